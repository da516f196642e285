/**
 * `airflow-ha logs COMPONENT`: the journal of a component's systemd units on each of its hosts,
 * read with journalctl(1) through the SSH pool in parallel, each line prefixed with the host name.
 * The plan (hosts and command lines) and the line prefixing are pure; {@link streamLogs} runs them.
 */
import { sh, type Cmd } from '../core/cmd.js';
import { AirflowHaError, ExitCode, InputError } from '../core/errors.js';
import { firstControlChar } from '../core/text.js';
import type { Inventory } from '../inventory/schema.js';
import { componentUnits, isLogComponent, LOG_COMPONENTS } from '../components/units.js';
import type { Transport } from '../ssh/transport.js';

/** Lines shown per host when neither `-n` nor `--since` is given. */
export const DEFAULT_LOG_LINES = 100;

/** What `logs` was asked for. */
export interface LogsRequest {
  component: string;
  /** `--host`: comma-separated host names, each a host of the component. */
  hosts?: string;
  /** `-f`: keep following until interrupted. */
  follow?: boolean;
  /** `-n`: the last LINES lines (text as given; a whole number). */
  lines?: string;
  /** `--since`: as journalctl(1) `--since` takes it (systemd.time(7): `2024-05-01 10:00`, `-1h`, `yesterday`). */
  since?: string;
}

/** One host's command. */
export interface LogsCommand {
  host: string;
  units: string[];
  cmd: Cmd;
}

/**
 * `journalctl --no-pager -o short-iso -u UNIT... [-n N] [--since T] [-f]` (journalctl(1)): ISO 8601
 * times, every unit of the host in one interleaved stream.
 */
export function journalctlCmd(units: readonly string[], o: { lines?: number; since?: string; follow?: boolean }): Cmd {
  let cmd = sh`journalctl --no-pager -o short-iso`;
  for (const u of units) cmd = sh`${cmd} -u ${u}`;
  if (o.lines !== undefined) cmd = sh`${cmd} -n ${String(o.lines)}`;
  if (o.since !== undefined) cmd = sh`${cmd} --since ${o.since}`;
  if (o.follow) cmd = sh`${cmd} -f`;
  return cmd;
}

/**
 * The per-host commands of a request: the component's hosts (or those of `--host`), each with the
 * journalctl line for its units. `-n` defaults to {@link DEFAULT_LOG_LINES} unless `--since` is given.
 * @throws InputError naming the known components, or the component's hosts, or the bad value.
 */
export function logsPlan(inv: Inventory, req: LogsRequest): LogsCommand[] {
  if (!isLogComponent(req.component)) throw new InputError(`unknown component "${req.component}" (known: ${LOG_COMPONENTS.join(', ')})`);
  let targets = componentUnits(inv, req.component);
  if (targets.length === 0) throw new InputError(`no host of this inventory runs ${req.component}`);
  if (req.hosts !== undefined) {
    const names = req.hosts.split(',').map((h) => h.trim()).filter(Boolean);
    const known = targets.map((t) => t.host.name);
    const unknown = names.filter((n) => !known.includes(n));
    if (names.length === 0 || unknown.length > 0) {
      throw new InputError(`--host ${unknown.join(',') || '""'}: not a host of ${req.component} (its hosts: ${known.join(', ')})`);
    }
    targets = targets.filter((t) => names.includes(t.host.name));
  }
  let lines: number | undefined;
  if (req.lines !== undefined) {
    if (!/^[0-9]{1,9}$/.test(req.lines)) throw new InputError(`-n takes a whole number of lines, got "${req.lines}"`);
    lines = Number(req.lines);
  } else if (req.since === undefined) lines = DEFAULT_LOG_LINES;
  if (req.since !== undefined && (req.since.trim() === '' || firstControlChar(req.since) !== undefined)) {
    throw new InputError(`--since takes a time as journalctl does (e.g. "2024-05-01 10:00", "-1h", "yesterday"), got ${JSON.stringify(req.since)}`);
  }
  const o = { ...(lines !== undefined ? { lines } : {}), ...(req.since !== undefined ? { since: req.since } : {}), follow: Boolean(req.follow) };
  return targets.map((t) => ({ host: t.host.name, units: t.units, cmd: journalctlCmd(t.units, o) }));
}

/**
 * Splits a stream of chunks into lines, each written as `HOST | line` with the host name padded to
 * `width`; a last line without a newline is held until {@link LinePrefixer.flush}.
 */
export class LinePrefixer {
  #rest = '';
  readonly #prefix: string;
  constructor(
    host: string,
    width: number,
    readonly write: (text: string) => void,
  ) {
    this.#prefix = `${host.padEnd(width)} | `;
  }

  /** Adds a chunk (UTF-8; a character split across chunks is kept whole). */
  push(chunk: string): void {
    const text = this.#rest + chunk;
    const parts = text.split('\n');
    this.#rest = parts.pop() ?? '';
    if (parts.length) this.write(parts.map((l) => `${this.#prefix}${l.replace(/\r$/, '')}\n`).join(''));
  }

  /** Writes a held partial line, if any. */
  flush(): void {
    if (this.#rest !== '') this.write(`${this.#prefix}${this.#rest}\n`);
    this.#rest = '';
  }
}

/**
 * Runs `plan` on its hosts in parallel, writing each host's lines as they come to `out` (stderr
 * lines to `err`) with the host name padded to the longest. A host that cannot be reached is
 * named on `err` and the others go on. With `signal` aborted (Ctrl-C while following), the
 * connections are closed and the run ends as ok.
 * @returns 0; 1 when a journalctl failed; 3 when a host was unreachable (the worst of them).
 */
export async function streamLogs(plan: readonly LogsCommand[], transport: Transport, out: (t: string) => void, err: (t: string) => void, signal?: AbortSignal): Promise<number> {
  const width = Math.max(...plan.map((p) => p.host.length));
  let worst: number = ExitCode.ok;
  let stopped = false;
  const stop = () => {
    stopped = true;
    void transport.close();
  };
  if (signal?.aborted) stop();
  else signal?.addEventListener('abort', stop, { once: true });
  const decoderFor = () => new TextDecoder('utf-8');
  try {
    await Promise.all(
      plan.map(async (p) => {
        const lines = new LinePrefixer(p.host, width, out);
        const dec = decoderFor();
        try {
          const conn = await transport.connect(p.host);
          const res = await conn.exec(p.cmd, { onStdout: (c) => lines.push(dec.decode(c, { stream: true })) });
          lines.push(dec.decode());
          lines.flush();
          const errLines = new LinePrefixer(p.host, width, err);
          errLines.push(res.stderr);
          errLines.flush();
          if (res.code !== 0) worst = Math.max(worst, ExitCode.taskFailed);
        } catch (e) {
          lines.flush();
          if (stopped) return;
          worst = Math.max(worst, e instanceof AirflowHaError ? e.exitCode : ExitCode.taskFailed);
          err(`${p.host.padEnd(width)} | ${(e as Error).message}\n`);
        }
      }),
    );
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  return stopped ? ExitCode.ok : worst;
}
