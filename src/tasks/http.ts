import { Buffer } from 'node:buffer';
import { sh, type Cmd } from '../core/cmd.js';
import { Secret } from '../core/secret.js';

/** HTTP Basic credentials (RFC 7617): the password travels only as a {@link Secret}. */
export interface BasicAuth {
  user: string;
  password: Secret;
}

/** The `Authorization` header value for `auth`: `Basic base64(user:password)` (RFC 7617 section 2), as a Secret. */
export function basicAuthHeader(auth: BasicAuth): Secret {
  return new Secret(`Basic ${Buffer.from(`${auth.user}:${auth.password.reveal()}`, 'utf8').toString('base64')}`);
}

/**
 * A raw HTTP/1.0 GET of an `http://` URL over bash's /dev/tcp, printing the whole response (status
 * line, headers, blank line, body) on stdout: one bash, no interpreter or curl started, so a check
 * that finds everything in place costs milliseconds (RFC 9112: message syntax). Path and host go in
 * as arguments of the inner script, never into its text. With `auth`, the `Authorization` header is
 * read from the variable AH_AUTH set for that one command (masked as `***` wherever the command is
 * shown). Fails (non-zero, nothing printed) when nothing accepts the connection or `timeoutSec`
 * (default 5) passes. Throws for a URL that is not `http://`.
 */
export function httpGet(url: string, opts: { auth?: BasicAuth; timeoutSec?: number } = {}): Cmd {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`httpGet: only http:// URLs, got ${url}`);
  const head = 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\nConnection: close\\r\\n';
  const request = opts.auth ? `printf '${head}Authorization: %s\\r\\n\\r\\n' "$1" "$2" "$AH_AUTH"` : `printf '${head}\\r\\n' "$1" "$2"`;
  const script = `exec 3<>/dev/tcp/${u.hostname}/${u.port || '80'} && ${request} >&3 && cat <&3`;
  const env = opts.auth ? sh`AH_AUTH=${basicAuthHeader(opts.auth)} ` : sh``;
  return sh`${env}timeout ${opts.timeoutSec ?? 5} bash -c ${script} http ${`${u.pathname}${u.search}`} ${u.host}`;
}

