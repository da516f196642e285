/**
 * One host's checks as ONE shell script (one SSH round trip): every probe runs in parallel under its
 * own `timeout`, and the outputs come back in order, each followed by the marker line of
 * src/run/facts.ts (`@@<nonce> <index> <exit code>`), so {@link parseFactOutput} splits them.
 */
import { Cmd, raw, sh } from '../core/cmd.js';
import type { Secret } from '../core/secret.js';

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
}

/** Exit code of a command killed by timeout(1). */
export const TIMED_OUT = 124;

/**
 * The script: a private temp folder (mktemp -d, removed on exit), each probe started in the
 * background as `timeout -k 1 N sh -c CMD` with stdin closed and stderr dropped, its stdout and exit
 * code kept in that folder; after `wait`, each output then its marker. The longest probe bounds the
 * host's time, not their sum.
 */
export function probeScript(probes: readonly Probe[], nonce: string): Cmd {
  const head = raw(`d=$(mktemp -d) || exit 1\ntrap 'rm -rf "$d"' EXIT`);
  const start = probes.map((p, i) => sh`{ ${envAssignments(p.env)}timeout -k 1 ${p.timeoutSec} sh -c ${p.cmd.asWord()} </dev/null >"$d/"${i} 2>/dev/null; echo $? >"$d/"${i}.rc; } &`);
  const collect = probes.map((_, i) => sh`cat "$d/"${i}; printf ${`\n@@${nonce} ${i} %s\n`} "$(cat "$d/"${i}.rc)"`);
  return Cmd.join([head, ...start, raw('wait'), ...collect], '\n');
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
 * (message syntax).
 */
export function httpGet(url: string, withAuth = false): Cmd {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`httpGet: only http:// URLs, got ${url}`);
  const port = u.port || '80';
  const head = 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\nConnection: close\\r\\n';
  const request = withAuth ? `printf '${head}Authorization: %s\\r\\n\\r\\n' "$1" "$2" "$${HTTP_AUTH_ENV}"` : `printf '${head}\\r\\n' "$1" "$2"`;
  const script = `exec 3<>/dev/tcp/${u.hostname}/${port} && ${request} >&3 && cat <&3`;
  return sh`bash -c ${script} http ${`${u.pathname}${u.search}`} ${u.host}`;
}

/** Splits a raw HTTP response into status and body (status 0 when the text is not one). */
export function parseHttp(text: string): HttpResponse {
  const m = /^HTTP\/\d(?:\.\d)? (\d{3})[^\n]*\n/.exec(text);
  if (!m) return { status: 0, body: '' };
  const sep = text.search(/\r?\n\r?\n/);
  const body = sep < 0 ? '' : text.slice(sep).replace(/^\r?\n\r?\n/, '');
  return { status: Number(m[1]), body };
}
