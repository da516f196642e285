import type { Cmd } from '../core/cmd.js';

/** The outcome of one command on a host. `code` is null when the connection dropped mid-command. */
export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options for one command. */
export interface ExecOptions {
  /** Bytes written to the command's stdin, then closed. */
  stdin?: string | Buffer;
  /** Seconds before the command is abandoned (the result then has code null). Default: none. */
  timeoutSec?: number;
  /** Called with each chunk of stdout as it arrives (e.g. to time when the first byte came). */
  onStdout?: (chunk: Buffer) => void;
}

/** Desired metadata of an uploaded file. `mode` is octal text such as `0644`. */
export interface PutOptions {
  mode: string;
  owner: string;
  group: string;
}

/**
 * One open session to a host. Commands run as root: through `sudo -n` when the login user is not root.
 * Implementations: the ssh2 pool (src/ssh/pool.ts) and recording fakes in tests.
 */
export interface Connection {
  readonly host: string;
  /** Runs `cmd` with `sh -c` as root. Never throws for a non-zero exit; throws when the connection is gone. */
  exec(cmd: Cmd, opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Writes `content` to `path` atomically: upload into a root-only stage folder on the host, set
   * owner/group/mode there (never by name in the target folder, never through a symlink), then move
   * it beside `path` and rename it over `path`. A failure at any point leaves `path` as it was.
   */
  put(path: string, content: Buffer, opts: PutOptions): Promise<void>;
}

/** Opens (and caches) one connection per host for the whole run. */
export interface Transport {
  /** The connection to `host` (by inventory name), opened on first use. Throws UnreachableError. */
  connect(host: string): Promise<Connection>;
  /** Closes every connection. */
  close(): Promise<void>;
}
