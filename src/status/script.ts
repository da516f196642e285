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
  const start = probes.map((p, i) => sh`{ timeout -k 1 ${p.timeoutSec} sh -c ${p.cmd.asWord()} </dev/null >"$d/"${i} 2>/dev/null; echo $? >"$d/"${i}.rc; } &`);
  const collect = probes.map((_, i) => sh`cat "$d/"${i}; printf ${`\n@@${nonce} ${i} %s\n`} "$(cat "$d/"${i}.rc)"`);
  return Cmd.join([head, ...start, raw('wait'), ...collect], '\n');
}

/** A parsed HTTP response: status code (0 when nothing answered) and body. */
export interface HttpResponse {
  status: number;
  body: string;
}

/**
 * A raw HTTP/1.0 GET of an `http://` URL over bash's /dev/tcp (no curl on minimal hosts), printing
 * the whole response. With `authorization`, the header `Authorization: <value>` is sent; the value is
 * a secret (passed in the environment of bash, masked in logs). RFC 9112 (message syntax).
 */
export function httpGet(url: string, authorization?: Secret): Cmd {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`httpGet: only http:// URLs, got ${url}`);
  const port = u.port || '80';
  const auth = authorization ? 'Authorization: %s\\r\\n' : '%s';
  const script = `exec 3<>/dev/tcp/${u.hostname}/${port} && printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\nConnection: close\\r\\n${auth}\\r\\n' "$1" "$2" "$AH_AUTH" >&3 && cat <&3`;
  const env = authorization ? sh`AH_AUTH=${authorization} ` : raw('AH_AUTH= ');
  return sh`${env}bash -c ${script} http ${`${u.pathname}${u.search}`} ${u.host}`;
}

/** Splits a raw HTTP response into status and body (status 0 when the text is not one). */
export function parseHttp(text: string): HttpResponse {
  const m = /^HTTP\/\d(?:\.\d)? (\d{3})[^\n]*\n/.exec(text);
  if (!m) return { status: 0, body: '' };
  const sep = text.search(/\r?\n\r?\n/);
  const body = sep < 0 ? '' : text.slice(sep).replace(/^\r?\n\r?\n/, '');
  return { status: Number(m[1]), body };
}
