/**
 * HTTPS requests on a host, for the endpoints that speak TLS once `cluster.tls` is on (etcd's client
 * port, Patroni's REST API): bash's /dev/tcp cannot do TLS and minimal hosts have no curl, but every
 * host has python3 (the base step installs it), whose `ssl` module verifies the server against the
 * cluster CA and, for etcd, presents a client certificate
 * (https://docs.python.org/3/library/ssl.html#ssl.create_default_context, `load_cert_chain`;
 * `http.client.HTTPSConnection`).
 */
import { sh, type Cmd } from '../core/cmd.js';

/** The files a TLS client on a host uses: the CA bundle to verify the server, and optionally its own certificate and key. */
export interface TlsClientFiles {
  /** CA file; empty: the system's trust store. */
  ca: string;
  cert?: string;
  key?: string;
}

/**
 * HTTP status printed when the TCP connection opened but TLS or the request failed (a handshake
 * refused, a certificate that does not verify, a client certificate that cannot be loaded). It is
 * nginx's non-standard 495 ("SSL Certificate Error"): a status line, so a parser never mistakes such
 * an answer for "nothing listens" (status 0), which would be a dangerous conclusion for etcd's
 * "does my cluster exist" fact.
 */
export const TLS_FAILED_STATUS = 495;

/**
 * Python 3 program: argv METHOD HOST PORT PATH CA CERT KEY BODY (CERT/KEY/BODY may be empty). It
 * first opens a plain TCP connection: when that fails nothing is printed and it exits 7 (nothing
 * listens, like a refused /dev/tcp). Then it makes the request over TLS verified against CA (host
 * name or IP checked against the certificate's SANs), with the header `Authorization` from the
 * variable AH_AUTH when set, and prints `HTTP/1.0 <status> <reason>`, a blank line and the body, as
 * the raw responses of src/status/script.ts do. A TLS or request failure prints status
 * {@link TLS_FAILED_STATUS} with the error as the body and exits 1.
 */
const HTTPS_PY = [
  'import os,socket,ssl,sys,http.client',
  'm,host,port,path,ca,cert,key,body=sys.argv[1:9]',
  'try:',
  ' socket.create_connection((host,int(port)),timeout=3).close()',
  'except OSError:',
  ' sys.exit(7)',
  'try:',
  ' c=ssl.create_default_context(cafile=ca or None)',
  ' if cert:',
  '  c.load_cert_chain(cert,key or None)',
  ' h=http.client.HTTPSConnection(host,int(port),context=c,timeout=5)',
  " hd={'Connection':'close'}",
  " a=os.environ.get('AH_AUTH')",
  ' if a:',
  "  hd['Authorization']=a",
  " if m=='POST':",
  "  hd['Content-Type']='application/json'",
  " h.request(m,path,body=body.encode() if m=='POST' else None,headers=hd)",
  ' r=h.getresponse()',
  ' b=r.read()',
  'except Exception as e:',
  ` sys.stdout.write('HTTP/1.0 ${TLS_FAILED_STATUS} TLS failed\\r\\n\\r\\n%s\\n'%e)`,
  ' sys.exit(1)',
  "sys.stdout.write('HTTP/1.0 %d %s\\r\\n\\r\\n'%(r.status,r.reason))",
  'sys.stdout.flush()',
  'sys.stdout.buffer.write(b)',
].join('\n');

/**
 * A request to an `https://` URL on a host, printing the raw response (see {@link HTTPS_PY}); with
 * `withAuth`, the Authorization header's value comes from the variable AH_AUTH (never an argv).
 * @throws Error for a URL that is not `https://`.
 */
export function httpsRequest(method: 'GET' | 'POST' | 'OPTIONS', url: string, tls: TlsClientFiles, body = ''): Cmd {
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new Error(`httpsRequest: only https:// URLs, got ${url}`);
  return sh`python3 -c ${HTTPS_PY} ${method} ${u.hostname} ${u.port || '443'} ${`${u.pathname}${u.search}`} ${tls.ca} ${tls.cert ?? ''} ${tls.key ?? ''} ${body}`;
}

/** Exit 0 when an `https://` URL answers GET with a 2xx status within `timeoutSec` (for waits and gates). */
export function httpsOk(url: string, tls: TlsClientFiles, timeoutSec = 5): Cmd {
  return sh`timeout ${timeoutSec} ${httpsRequest('GET', url, tls)} 2>/dev/null | head -n 1 | grep -q '^HTTP/1.0 2[0-9][0-9] '`;
}
