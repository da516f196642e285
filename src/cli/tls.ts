/**
 * The cluster CA and the hosts' certificates on the operator's machine (`cluster.tls`), kept in the
 * state folder beside the inventory like secrets.yaml (README "TLS"):
 *
 *   <state>/tls/ca.crt, ca.key (0600)           the CA, made once per cluster (unless `tls.ca` names the site's own)
 *   <state>/tls/hosts/<host>.crt, <host>.key (0600)   each host's certificate and key
 *
 * Made with the openssl CLI of this machine through execa. node:crypto makes keys and reads X.509
 * certificates (`X509Certificate`: SANs, issuer, expiry, `checkPrivateKey`) but cannot sign one, and
 * openssl is on every Debian/RHEL machine (and audited), so no new npm dependency was added for
 * `@peculiar/x509` or `node-forge`. Keys are EC P-256 (every component here takes them: Go's
 * crypto/tls for etcd, Python's ssl for Patroni, OpenSSL for PostgreSQL and HAProxy). A key never
 * passes through an argv: openssl prints it on stdout and this module writes it, 0600, into the
 * 0700 folder. Values are never printed; a private key's text is a {@link Secret}.
 */
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import type { LoadedInventory } from '../inventory/load.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { runLocal } from '../inventory/secret-sources.js';
import type { TlsMaterial } from '../run/playbook.js';
import { hostSans, parseSubjectAltName, sameSans, sanExtension, type HostSans } from '../tls/plan.js';

/** Days the generated CA is valid (10 years); host certificates use `cluster.tls.days`. */
export const CA_DAYS = 3650;
/** Seconds one openssl run may take. */
const OPENSSL_TIMEOUT_SEC = 30;

/** The folder of the hosts' certificates and keys in the state folder: `<state>/tls/hosts`. */
export function tlsHostsDir(stateDir: string): string {
  return path.join(stateDir, 'tls', 'hosts');
}

/** Where the CA's files are: the state folder's, or the site's own (`cluster.tls.ca`, relative to the inventory). */
export function caFiles(loaded: Pick<LoadedInventory, 'dir' | 'stateDir' | 'inventory'>): { cert: string; key: string; own: boolean } {
  const own = loaded.inventory.cluster.tls.ca;
  if (own) return { cert: path.resolve(loaded.dir, own.cert), key: path.resolve(loaded.dir, own.key), own: true };
  const dir = path.join(loaded.stateDir, 'tls');
  return { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key'), own: false };
}

/**
 * The CA and every host's certificate and key for `cluster.tls.enabled`, made when missing: the CA
 * once (unless the site brings its own), a host's pair when it has none, when its certificate's
 * SANs are not what the inventory now asks for ({@link hostSans}: a new VIP, a changed address) or
 * when the CA did not sign it (a CA brought in later). A certificate is otherwise never re-made, so
 * a re-run uploads nothing. `env` is the environment openssl runs with (PATH). `opts.renew`: the
 * hosts whose pair is made anew even when current (`airflow-ha certs rotate`: a new key and a new
 * certificate, same CA).
 * @throws InputError (exit 2, nothing on the hosts touched) when a private key is readable by group
 *   or others, the site's CA files are missing, not a CA certificate or not its key, or openssl
 *   fails (its exit code and the last line of its stderr).
 */
export async function loadOrCreateTls(loaded: Pick<LoadedInventory, 'dir' | 'stateDir' | 'inventory'>, env: Readonly<Record<string, string | undefined>>, opts: { renew?: ReadonlySet<string> } = {}): Promise<TlsMaterial> {
  const inv = loaded.inventory;
  const ca = caFiles(loaded);
  const dir = path.join(loaded.stateDir, 'tls');
  const hostsDir = tlsHostsDir(loaded.stateDir);
  await mkdir(hostsDir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await chmod(hostsDir, 0o700);
  const openssl = (args: string[], input?: string) => runOpenssl(args, env, input);
  if (!ca.own && !(await exists(ca.cert))) await createCa(inv, ca, dir, openssl);
  const caPem = await readPem(ca.cert, 'the CA certificate');
  const caKeyPem = await readKey(ca.key);
  const caX509 = parseCert(caPem, ca.cert);
  if (!caX509.ca) throw new InputError(`${ca.cert} is not a CA certificate (basicConstraints CA:TRUE); cluster.tls.ca must name the CA that signs the hosts' certificates`);
  if (!caX509.checkPrivateKey(createPrivateKey(caKeyPem.reveal()))) throw new InputError(`${ca.key} is not the private key of ${ca.cert}`);
  const hosts: Record<string, { cert: string; key: Secret }> = {};
  for (const host of inv.hosts) {
    const certFile = path.join(hostsDir, `${host.name}.crt`);
    const keyFile = path.join(hostsDir, `${host.name}.key`);
    const want = hostSans(inv, host);
    if (opts.renew?.has(host.name) || !(await currentHostCert(certFile, keyFile, caX509, want))) await createHostCert(inv, host, want, { certFile, keyFile, ca, dir }, openssl);
    hosts[host.name] = { cert: await readPem(certFile, `${host.name}'s certificate`), key: await readKey(keyFile) };
  }
  return { caCert: caPem, hosts };
}

/** Whether the pair at certFile/keyFile exists, matches, is signed by `ca` and names exactly `want`. */
async function currentHostCert(certFile: string, keyFile: string, ca: X509Certificate, want: HostSans): Promise<boolean> {
  if (!(await exists(certFile)) || !(await exists(keyFile))) return false;
  const cert = parseCert(await readFile(certFile, 'utf8'), certFile);
  const key = await readKey(keyFile);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey) && cert.checkPrivateKey(createPrivateKey(key.reveal())) && sameSans(parseSubjectAltName(cert.subjectAltName), want);
}

type Openssl = (args: string[], input?: string) => Promise<string>;

/** A new EC P-256 key (PEM, from `openssl genpkey` on stdout). */
const newKey = (openssl: Openssl) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);

/** The CA: key and self-signed certificate (openssl req(1) `-x509`, extensions per x509v3_config(5)). */
async function createCa(inv: Inventory, ca: { cert: string; key: string }, dir: string, openssl: Openssl): Promise<void> {
  const key = await newKey(openssl);
  const keyTmp = await writePrivate(`${ca.key}.${process.pid}.tmp`, key);
  const cfg = await writePrivate(
    path.join(dir, `ca.${process.pid}.cnf`),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      'x509_extensions = v3_ca',
      '[dn]',
      `CN = airflow-ha ${inv.cluster.name} CA`,
      '[v3_ca]',
      'basicConstraints = critical,CA:TRUE',
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
      '',
    ].join('\n'),
  );
  try {
    const cert = await openssl(['req', '-x509', '-new', '-config', cfg, '-key', keyTmp, '-sha256', '-days', String(CA_DAYS), '-set_serial', serial()]);
    // The key first: a CA certificate without its key beside it would be a CA that can sign nothing.
    await rename(keyTmp, ca.key);
    await writeAtomic(ca.cert, cert, 0o644);
  } finally {
    await unlink(cfg).catch(() => undefined);
    await unlink(keyTmp).catch(() => undefined);
  }
}

/** One host's key and certificate signed by the CA (openssl x509(1) `-req`), SANs from {@link hostSans}. */
async function createHostCert(
  inv: Inventory,
  host: Host,
  sans: HostSans,
  files: { certFile: string; keyFile: string; ca: { cert: string; key: string }; dir: string },
  openssl: Openssl,
): Promise<void> {
  const key = await newKey(openssl);
  const keyTmp = await writePrivate(`${files.keyFile}.${process.pid}.tmp`, key);
  const cfg = await writePrivate(
    path.join(files.dir, `${host.name}.${process.pid}.cnf`),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      `CN = ${host.name}`,
      '[v3_host]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      // Both: every member is a server (etcd, Patroni, PostgreSQL) and a client (etcd peers, Patroni to etcd, root's etcdctl).
      'extendedKeyUsage = serverAuth,clientAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      `subjectAltName = ${sanExtension(sans)}`,
      '',
    ].join('\n'),
  );
  try {
    const csr = await openssl(['req', '-new', '-config', cfg, '-key', keyTmp]);
    const cert = await openssl(
      ['x509', '-req', '-CA', files.ca.cert, '-CAkey', files.ca.key, '-set_serial', serial(), '-days', String(inv.cluster.tls.days), '-sha256', '-extfile', cfg, '-extensions', 'v3_host'],
      csr,
    );
    await rename(keyTmp, files.keyFile);
    await writeAtomic(files.certFile, cert, 0o644);
  } finally {
    await unlink(cfg).catch(() => undefined);
    await unlink(keyTmp).catch(() => undefined);
  }
}

/** A random positive 127-bit serial as openssl's `0x...` (RFC 5280 4.1.2.2: unique per CA, at most 20 octets). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return `0x${b.toString('hex')}`;
}

/** Runs openssl with `args`; its stdout, or an InputError naming the subcommand, exit code and stderr's last line. */
async function runOpenssl(args: string[], env: Readonly<Record<string, string | undefined>>, input?: string): Promise<string> {
  const r = await runLocal(['openssl', ...args], { env, timeoutSec: OPENSSL_TIMEOUT_SEC, ...(input !== undefined ? { input } : {}) });
  if (r.startError) throw new InputError(`cluster.tls needs the openssl command on this machine (${r.startError}); install it (Debian: apt-get install openssl)`);
  if (r.exitCode !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    throw new InputError(`openssl ${args[0]} failed (${r.timedOut ? `timed out after ${OPENSSL_TIMEOUT_SEC} s` : `exit ${r.exitCode ?? r.signal}`}): ${last.slice(0, 200)}`);
  }
  return r.stdout.toString('utf8');
}

/** Writes `text` to a new file `file` (0600, O_EXCL); returns its path. */
async function writePrivate(file: string, text: string): Promise<string> {
  await unlink(file).catch(() => undefined);
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return file;
}

/** Writes `text` to `file` through a temp file and a rename, with `mode`. */
async function writeAtomic(file: string, text: string, mode: number): Promise<void> {
  const tmp = await writePrivate(`${file}.${process.pid}.tmp`, text);
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/** A PEM file's text. @throws InputError when it cannot be read. */
async function readPem(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new InputError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** A private key file's text as a Secret. @throws InputError when others can read it, or it cannot be read. */
async function readKey(file: string): Promise<Secret> {
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch (e) {
    throw new InputError(`cannot read private key ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new InputError(`private key ${file} has mode ${mode.toString(8).padStart(4, '0')}: it must not be readable by group or others; fix it with \`chmod 600 ${file}\``);
  }
  return new Secret(await readPem(file, 'private key'));
}

/** An X.509 certificate. @throws InputError when the text is not one. */
function parseCert(pem: string, file: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new InputError(`${file} is not a PEM X.509 certificate`);
  }
}

const exists = (file: string): Promise<boolean> => stat(file).then(
  () => true,
  () => false,
);
