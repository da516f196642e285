/**
 * `airflow-ha ssh HOST [-- CMD]` and `airflow-ha logs COMPONENT`: a shell on a host and the journal
 * of a component, through the same SSH settings, jump hosts and pinned host keys as every run.
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
 * Registers `ssh` and `logs` on `program`; `setExit` receives the exit code, `terminal` gives the
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

  withExamples(
    program.command('logs'),
    'airflow-ha logs -i inventory/lab.yaml patroni --since -1h',
    'airflow-ha logs -i inventory/lab.yaml rabbitmq --host mq1 -f    # follow until Ctrl-C',
  )
    .description('the journal of a component\'s systemd units on its hosts, in parallel, each line prefixed by the host name')
    .addOption(inventoryOption(io.env))
    .argument('<component>', 'etcd, patroni, haproxy, keepalived, rabbitmq, scheduler, webserver, triggerer, dag-processor, worker, flower, nfs, ftp, firewall')
    .option('--host <names>', 'only these hosts of the component (comma-separated)')
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <lines>', 'the last LINES lines of each host (default 100, or all since --since)')
    .option('--since <time>', 'from this time, as journalctl --since takes it ("2024-05-01 10:00", "-1h", "yesterday")')
    .option('--accept-new-host-keys', 'trust unknown host keys on first use and record them (a changed key is always refused)')
    .action(async (component: string, o: { inventory: string; host?: string; follow?: boolean; lines?: string; since?: string } & SshFlags) => {
      const loaded = await load(io, o.inventory);
      const [{ logsPlan, streamLogs }, { buildTransport }] = await Promise.all([import('./logs.js'), import('./transport.js')]);
      const plan = logsPlan(loaded.inventory, {
        component,
        ...(o.host !== undefined ? { hosts: o.host } : {}),
        follow: Boolean(o.follow),
        ...(o.lines !== undefined ? { lines: o.lines } : {}),
        ...(o.since !== undefined ? { since: o.since } : {}),
      });
      const transport = await buildTransport(loaded, io, o);
      const abort = new AbortController();
      const onInt = () => abort.abort();
      process.once('SIGINT', onInt);
      try {
        setExit(await streamLogs(plan, transport, io.out, io.err, abort.signal));
      } finally {
        process.off('SIGINT', onInt);
        await transport.close();
      }
    });
}
