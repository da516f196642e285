/**
 * `airflow-ha ssh HOST [-- CMD]`: a shell on a host through the same SSH settings, jump hosts and
 * pinned host keys as every run.
 */
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { InputError } from '../core/errors.js';
import type { LoadedInventory } from '../inventory/load.js';
import type { SessionOptions, SshConnection } from '../ssh/pool.js';
import { inventoryOption, withExamples } from './options.js';
import type { Io } from './run.js';
import type { SshFlags } from './transport.js';

/** The operator's terminal, or the pipes standing in for it. */
export interface Terminal {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Set when stdin and stdout are a terminal: its type, size, raw mode and size changes. */
  tty?: {
    term: string;
    size(): { rows: number; cols: number };
    setRaw(on: boolean): void;
    /** Calls `cb` on each window-size change; returns the function that stops it. */
    onResize(cb: () => void): () => void;
  };
}

/** The process's own terminal (SIGWINCH arrives as the stdout stream's 'resize' event). */
export function processTerminal(env: NodeJS.ProcessEnv): Terminal {
  const { stdin, stdout, stderr } = process;
  if (!stdin.isTTY || !stdout.isTTY) return { stdin, stdout, stderr };
  return {
    stdin,
    stdout,
    stderr,
    tty: {
      term: env['TERM'] || 'xterm-256color',
      size: () => ({ rows: stdout.rows || 24, cols: stdout.columns || 80 }),
      setRaw: (on) => stdin.setRawMode(on),
      onResize: (cb) => {
        stdout.on('resize', cb);
        return () => stdout.off('resize', cb);
      },
    },
  };
}

/**
 * Runs the interactive session on `conn`: `words` joined by spaces as ssh joins them (the login
 * user's shell parses them; nothing is quoted), or a login shell without. On a terminal: a pty of
 * its type and size, raw mode while the session lasts, size changes forwarded.
 * @returns the remote exit status; 255 when it ended by a signal (as ssh(1) does), named on stderr.
 */
export async function runSession(conn: Pick<SshConnection, 'session' | 'host'>, words: readonly string[], term: Terminal): Promise<number> {
  const opts: SessionOptions = { stdin: term.stdin, stdout: term.stdout, stderr: term.stderr };
  if (words.length > 0) opts.command = words.join(' ');
  let stopResize: (() => void) | undefined;
  const tty = term.tty;
  if (tty) {
    opts.pty = { term: tty.term, ...tty.size() };
    opts.onResize = (resize) => {
      stopResize = tty.onResize(() => {
        const s = tty.size();
        resize(s.rows, s.cols);
      });
    };
    tty.setRaw(true);
  }
  try {
    const res = await conn.session(opts);
    if (res.code !== null) return res.code;
    term.stderr.write(`airflow-ha: the session on ${conn.host} ended by signal ${res.signal ?? 'unknown'}\n`);
    return 255;
  } finally {
    stopResize?.();
    if (tty) tty.setRaw(false);
    term.stdin.pause();
  }
}

/** Loads and checks an inventory, printing its warnings (main.ts's `load`). */
export type LoadInventory = (io: Io, file: string) => Promise<LoadedInventory>;

/**
 * Registers `ssh` on `program`; `setExit` receives the exit code, `terminal` gives the
 * session its terminal (default: this process's).
 */
export function registerSshCommands(program: Command, io: Io, setExit: (code: number) => void, load: LoadInventory, terminal: () => Terminal = () => processTerminal(io.env)): void {
  withExamples(
    program.command('ssh'),
    'airflow-ha ssh -i inventory/lab.yaml sql1',
    'airflow-ha ssh -i inventory/lab.yaml sql1 -- sudo patronictl -c /etc/patroni/config.yml list',
  )
    .description('a shell on a host by its inventory name, through its jump hosts, host keys pinned; with -- CMD runs CMD, as the login user (like ssh, not as root); exits with the remote exit code')
    .addOption(inventoryOption(io.env))
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .argument('<host>', 'inventory host name')
    .argument('[command...]', 'command to run instead of a shell (after --)')
    .action(async (host: string, words: string[], o: { inventory: string } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const names = loaded.inventory.hosts.map((h) => h.name);
      if (!names.includes(host)) throw new InputError(`unknown host "${host}" (hosts of this inventory: ${names.join(', ')})`);
      const { buildTransport } = await import('./transport.js');
      const transport = await buildTransport(loaded, io, o);
      try {
        const conn = await transport.connect(host);
        setExit(await runSession(conn, words, terminal()));
      } finally {
        await transport.close();
      }
    });
}
