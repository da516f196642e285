/**
 * One host's checks as ONE shell script (one SSH round trip): every probe runs in parallel under its
 * own `timeout` (the local ones together in one job, {@link Probe.local}), and the outputs come back in order, each followed by the marker line of
 * src/run/facts.ts (`@@<nonce> <index> <exit code>`), so {@link parseFactOutput} splits them.
 */
import { Cmd, raw, sh } from '../core/cmd.js';
import type { Secret } from '../core/secret.js';
import { splitMarkedOutputs, type FactOutput } from '../facts/fact.js';
import { httpsRequest, type TlsClientFiles } from '../tasks/https.js';

/**
 * A read-only command on one host and the seconds it may take. Exit code 124 means it timed out
 * (coreutils timeout(1)); its stdout is what it printed (stderr only where the command says `2>&1`).
 */
export interface Probe {
  /** Unique per host, e.g. `host.units`, `etcd.status`, `rabbitmq.nodes`. */
  id: string;
  cmd: Cmd;
  timeoutSec: number;
  /**
   * Secrets the command reads from its environment (e.g. {@link HTTP_AUTH_ENV} for
   * {@link httpGet}): assigned by the script in front of the probe's job, so they reach the
   * command's environment and never an argv (the script itself travels on stdin, see
   * src/ssh/pool.ts `exec`).
   */
  env?: Readonly<Record<string, Secret>>;
  /**
   * Seconds a result stays good enough in `status --watch` (src/run/status.ts {@link StatusCache}):
   * a value that changes slowly (disk use, the installed release, the DAG revision, the target's SSH
   * login, certificate dates, the backup catalogue) is asked again only once its last answer is
   * older, so each tick costs the fast-changing checks only. Unset: asked on every tick.
   */
  refreshSec?: number;
  /**
   * Only reads files of this host (/proc, /run, the virtualenv, the TLS folder) and has no
   * {@link env}: {@link probeScript} runs every local probe one after another in one job under one
   * `timeout` (the largest of theirs), each in a subshell, instead of a `timeout` and an `sh` for
   * each: two execs fewer per probe. The price: if one did hang, the local probes after it would get
   * no answer too. So a probe that asks PID 1 (systemctl), a file system (df), the kernel's network
   * state through a tool (ip), a mount or the network is never local: it keeps its own timeout and
   * its own "timed out" line.
   */
  local?: boolean;
}

/** Exit code of a command killed by timeout(1). */
export const TIMED_OUT = 124;

/**
 * Exit code given to a probe that had not finished when the host's script was cut off at the
 * controller's deadline (never a real exit code: those are 0-255). Its line says "no answer within
 * N s"; the host's other probes are judged as usual.
 */
export const NO_ANSWER = -1;

/**
 * The script: a private temp folder (mktemp -d, removed on exit, and by a detached janitor after
 * the longest probe timeout + 2 s when the script itself is killed) holding a FIFO; each probe started
 * in the background as `timeout -k 1 N sh -c CMD` with stdin closed and stderr dropped, its stdout
 * kept in that folder; when it ends, its index and exit code go into the FIFO as one short line (one
 * write(2) below PIPE_BUF: lines never mix, pipe(7)). The collector reads that FIFO and prints each
 * probe as soon as it has ended — its output, then its marker line (`@@<nonce> <index> <exit code>`,
 * split by {@link parseProbeOutput}) — so a slow probe never holds back the others: when the
 * controller stops waiting, every finished probe's output is already on the wire. Nothing polls; the
 * longest probe bounds the host's time, not their sum. The {@link Probe.local} probes are one such
 * job: one after another, each output followed by its own marker. POSIX sh (dash, bash).
 */
export function probeScript(probes: readonly Probe[], nonce: string): Cmd {
  for (const p of probes) if (p.local && p.env && Object.keys(p.env).length) throw new Error(`probe ${p.id}: a local probe has no env`);
  // The host's clock first, before any probe starts: the controller bounds the host's clock offset
  // by when it sent the script and when this first line arrived (see parseProbeClock).
  const clock = sh`printf ${`@@${nonce} clock %s\n`} "$(date +%s%N)"`;
  // The FIFO is opened read-write by the collector first, so no writer ever blocks and no read
  // sees an end of file while probes still run.
  // A script cut off at the controller's deadline is killed (SIGKILL: no trap runs) while its
  // probes finish in the background: a janitor, detached from the session's output, removes the
  // folder once the last probe's `timeout -k 1` has surely ended (the longest timeout + 2 s).
  // Without it, each cut-off run left its folder in the host's /tmp.
  const janitorSec = Math.max(0, ...probes.map((p) => p.timeoutSec)) + 2;
  const head = Cmd.join(
    [
      raw(`d=$(mktemp -d) || exit 1`),
      sh`( sleep ${String(janitorSec)}; rm -rf "$d" ) </dev/null >/dev/null 2>&1 &`,
      raw(`trap 'rm -rf "$d"' EXIT\nmkfifo "$d/done" && exec 3<>"$d/done" || exit 1`),
    ],
    '\n',
  );
  const indexed = probes.map((p, i) => ({ p, i }));
  const own = indexed.filter(({ p }) => !p.local);
  const local = indexed.filter(({ p }) => p.local);
  const start = own.map(({ p, i }) => sh`{ ${envAssignments(p.env)}timeout -k 1 ${p.timeoutSec} sh -c ${p.cmd.asWord()} </dev/null >"$d/"${i} 2>/dev/null; echo ${i} $? >&3; } &`);
  if (local.length) {
    // The local probes' job writes each output followed by its own marker line into one file, which
    // the collector prints as the output of a pseudo probe (index probes.length, which the parser
    // ignores). Killed by its timeout, the probes it had not finished have no marker: NO_ANSWER.
    const group = Cmd.join(
      local.map(({ p, i }) => sh`( ${p.cmd} ) </dev/null 2>/dev/null; printf ${`\n@@${nonce} %s %s\n`} ${String(i)} $?`),
      '\n',
    );
    const timeoutSec = Math.max(...local.map(({ p }) => p.timeoutSec));
    start.push(sh`{ timeout -k 1 ${timeoutSec} sh -c ${group.asWord()} </dev/null >"$d/"${String(probes.length)} 2>/dev/null; echo ${String(probes.length)} $? >&3; } &`);
  }
  const collect = sh`n=${String(start.length)}
while [ "$n" -gt 0 ] && read -r i rc <&3; do
  cat "$d/$i"; printf ${`\n@@${nonce} %s %s\n`} "$i" "$rc"; n=$((n - 1))
done`;
  return Cmd.join([clock, head, ...start, collect], '\n');
}

/**
 * The host's clock reading that {@link probeScript} prints first, in milliseconds since the epoch
 * (`date +%s%N`, date(1)); undefined when it is missing.
 */
export function parseProbeClock(stdout: string, nonce: string): number | undefined {
  const m = new RegExp(`^@@${nonce} clock (\\d{10,})$`, 'm').exec(stdout);
  return m ? Math.floor(Number(m[1]) / 1e6) : undefined;
}

/**
 * Splits the output of {@link probeScript} into one output per probe (by index). A probe without its
 * marker (the script was cut off before it ended) gets `{ stdout: '', code: NO_ANSWER }`; so does
 * every probe when the script printed nothing. Never throws.
 */
export function parseProbeOutput(stdout: string, count: number, nonce: string): FactOutput[] {
  // Outputs begin after the clock line (when there is one).
  const clock = new RegExp(`^@@${nonce} clock \\d*\\n`).exec(stdout);
  return splitMarkedOutputs(stdout, count, nonce, clock ? clock[0].length : 0).map((o) => o ?? { stdout: '', code: NO_ANSWER });
}

/** `NAME=VALUE ` for each variable (names checked: a POSIX shell name), or nothing. */
function envAssignments(env: Readonly<Record<string, Secret>> | undefined): Cmd {
  const parts = Object.entries(env ?? {}).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`probe env: "${name}" is not a shell variable name`);
    return sh`${raw(name)}=${value} `;
  });
  return Cmd.join(parts, '');
}

/** The environment variable {@link httpGet} takes the Authorization header's value from. */
export const HTTP_AUTH_ENV = 'AH_AUTH';

/** A parsed HTTP response: status code (0 when nothing answered) and body. */
export interface HttpResponse {
  status: number;
  body: string;
}

/**
 * A raw HTTP/1.0 GET of an `http://` URL over bash's /dev/tcp (no curl on minimal hosts), printing
 * the whole response. With `withAuth`, the header `Authorization: <value>` is sent, the value read
 * from the environment variable {@link HTTP_AUTH_ENV} (a probe's `env`: never in an argv). RFC 9112
 * (message syntax). An `https://` URL goes through python3's ssl instead, verified with `tls`
 * (src/tasks/https.ts), printing the same kind of response.
 */
export function httpGet(url: string, withAuth = false, tls?: TlsClientFiles): Cmd {
  if (tls && url.startsWith('https:')) return httpsRequest('GET', url, tls);
  return httpRequest('GET', url, { withAuth });
}

/**
 * A raw HTTP/1.0 POST of `body` (JSON, `Content-Length` in bytes) to an `http://` URL, printing the
 * whole response: for APIs whose reads are POSTs, such as etcd's v3 JSON gateway
 * (https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/). An `https://` URL goes through python3's
 * ssl with `tls` (a client certificate for etcd's client-cert-auth), like {@link httpGet}.
 */
export function httpPost(url: string, body: string, tls?: TlsClientFiles): Cmd {
  if (tls && url.startsWith('https:')) return httpsRequest('POST', url, tls, body);
  return httpRequest('POST', url, { body });
}

function httpRequest(method: 'GET' | 'POST', url: string, opts: { withAuth?: boolean; body?: string }): Cmd {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`http${method === 'GET' ? 'Get' : 'Post'}: only http:// URLs, got ${url}`);
  const port = u.port || '80';
  const path = `${u.pathname}${u.search}`;
  const head = `${method} %s HTTP/1.0\\r\\nHost: %s\\r\\nConnection: close\\r\\n`;
  // The body's byte length: printf writes it as given (%s, no escapes interpreted).
  const request =
    opts.body !== undefined
      ? `printf '${head}Content-Type: application/json\\r\\nContent-Length: ${Buffer.byteLength(opts.body, 'utf8')}\\r\\n\\r\\n%s' "$1" "$2" "$3"`
      : opts.withAuth
        ? `printf '${head}Authorization: %s\\r\\n\\r\\n' "$1" "$2" "$${HTTP_AUTH_ENV}"`
        : `printf '${head}\\r\\n' "$1" "$2"`;
  const args = [path, u.host, ...(opts.body !== undefined ? [opts.body] : [])];
  return sh`bash -c ${`exec 3<>/dev/tcp/${u.hostname}/${port} && ${request} >&3 && cat <&3`} http ${args}`;
}

/**
 * A TCP connect to `address:port` within `timeoutSec` over bash's /dev/tcp; with `send` (a printf
 * format of bytes, e.g. `\\x00`) written after connecting, the first byte of the answer is printed
 * as two hex digits (od). Exit 0 when the connection opened (and, with `send`, a byte came back).
 */
export function tcpProbe(address: string, port: number, timeoutSec: number, send?: string): Cmd {
  const script = send === undefined ? `exec 3<>/dev/tcp/${address}/${port}` : `exec 3<>/dev/tcp/${address}/${port} && printf '${send}' >&3 && b=$(head -c 1 <&3 | od -An -tx1) && [ -n "$b" ] && echo $b`;
  return sh`timeout ${timeoutSec} bash -c ${script}`;
}

/** Splits a raw HTTP response into status and body (status 0 when the text is not one). */
export function parseHttp(text: string): HttpResponse {
  const m = /^HTTP\/\d(?:\.\d)? (\d{3})[^\n]*\n/.exec(text);
  if (!m) return { status: 0, body: '' };
  const sep = text.search(/\r?\n\r?\n/);
  const body = sep < 0 ? '' : text.slice(sep).replace(/^\r?\n\r?\n/, '');
  return { status: Number(m[1]), body };
}
