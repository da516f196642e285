import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  checkHostKey,
  formatKnownHostsLine,
  parseKnownHosts,
  type HostKeyCheck,
  type KnownHostsParseResult,
} from './hostkeys.js';

/** What {@link KnownHostsStore.record} did. */
export type RecordOutcome =
  | { recorded: true; line: number }
  | { recorded: false; check: HostKeyCheck };

/**
 * The known_hosts file of one inventory (OpenSSH format, man sshd(8)). Reads are fresh each time
 * (the file is small); appends are serialised within this process and done with one `O_APPEND`
 * write of a whole line, so concurrent writers never interleave partial lines.
 */
export class KnownHostsStore {
  #queue: Promise<unknown> = Promise.resolve();

  /** @param file path of the known_hosts file; it and its directory are created on first append. */
  constructor(readonly file: string) {}

  /** Parses the file; a missing file is empty. Throws on other read errors (EACCES, EISDIR…). */
  async read(): Promise<KnownHostsParseResult> {
    return parseKnownHosts(await this.#text());
  }

  async #text(): Promise<string> {
    try {
      return await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    }
  }

  /**
   * Appends `name key [comment]` unless, on a fresh read under the in-process lock, the host
   * already has entries (another connection recorded it first, or someone edited the file). Creates
   * the directory (0700) and the file (0600) when missing.
   * @returns `{recorded: true, line}` or `{recorded: false, check}` with the verdict that prevented it.
   */
  record(name: string, key: Buffer, comment?: string): Promise<RecordOutcome> {
    const run = async (): Promise<RecordOutcome> => {
      const text = await this.#text();
      const check = checkHostKey(parseKnownHosts(text).entries, name, key);
      if (check.status !== 'unknown') return { recorded: false, check };
      const line = formatKnownHostsLine(name, key, comment);
      const prefix = text.length > 0 && !text.endsWith('\n') ? '\n' : '';
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      const fh = await open(this.file, 'a', 0o600);
      try {
        await fh.write(`${prefix}${line}\n`);
      } finally {
        await fh.close();
      }
      const lineNo = (text.length === 0 ? 0 : text.split('\n').length - (text.endsWith('\n') ? 1 : 0)) + 1;
      return { recorded: true, line: lineNo };
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }
}
