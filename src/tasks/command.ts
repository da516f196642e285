import { quote, sh, type Cmd } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import { httpsOk } from './https.js';
import type { Handler, Task, TaskPlan } from './task.js';

/** Fact: the exit code of a read-only command (0 = true). */
export function commandSucceeds(cmd: Cmd): Fact<boolean> {
  return { key: `ok:${cmd.render()}`, cmd, parse: (_s, code) => code === 0 };
}

/** A command guarded so that it runs only when needed. */
export interface CommandSpec {
  name: string;
  cmd: Cmd;
  /** Skip when this path exists (e.g. a file the command creates). */
  creates?: string;
  /** Skip when this read-only command succeeds. */
  unless?: Cmd;
  /**
   * Skip when this fact is true. Facts with the same key run once per host and round trip, each
   * parsing the one output its own way: several commands can be guarded by one query.
   */
  skipWhen?: Fact<boolean>;
  notify?: Handler[];
  timeoutSec?: number;
}

/**
 * Task: run a command unless its guard says it is done. Without any guard it runs every time and
 * reports a change (like Ansible's `command`); give it `creates` or `unless` to be idempotent.
 */
export function command(spec: CommandSpec): Task {
  const guards: Fact<boolean>[] = [];
  if (spec.creates) guards.push(commandSucceeds(sh`test -e ${spec.creates}`));
  if (spec.unless) guards.push(commandSucceeds(spec.unless));
  if (spec.skipWhen) guards.push(spec.skipWhen);
  return {
    name: spec.name,
    facts: () => guards,
    plan(facts): TaskPlan {
      if (guards.some((g) => facts.get(g))) return { changed: false, ops: [], changes: [], notify: [] };
      return { changed: true, ops: [exec(spec.cmd, spec.timeoutSec)], changes: [`run ${spec.cmd.toString()}`], notify: spec.notify ?? [] };
    },
  };
}

/** What to wait for. Exactly one of port, http, cmd. */
export interface WaitSpec {
  /** TCP port to accept connections (on `host`, default 127.0.0.1). */
  port?: number;
  host?: string;
  /** URL that must answer with a 2xx status. */
  http?: string;
  /** CA file that verifies an `https://` URL (default: the system's trust store, Python's default verify paths). */
  ca?: string;
  /** A command that must exit 0. */
  cmd?: Cmd;
  /** Seconds before giving up (the task fails). */
  timeoutSec: number;
  /** Seconds between attempts. Default 1. */
  intervalSec?: number;
}

/**
 * The shell test for one attempt of a wait, without starting an interpreter (a no-op run pays for
 * every process): bash's /dev/tcp for ports, and for `http://` URLs a raw HTTP/1.0 GET over /dev/tcp
 * whose status line must be 2xx (RFC 9112 section 4). `https://` URLs go through python3's ssl,
 * verified against `ca` (src/tasks/https.ts; minimal hosts have no curl).
 */
export function waitCheck(spec: WaitSpec): Cmd {
  if (spec.port !== undefined) {
    const target = `/dev/tcp/${spec.host ?? '127.0.0.1'}/${spec.port}`;
    return sh`timeout 2 bash -c ${`exec 3<>${target}`} 2>/dev/null`;
  }
  if (spec.http !== undefined) {
    const url = new URL(spec.http);
    if (url.protocol === 'https:') return httpsOk(spec.http, { ca: spec.ca ?? '' }, 2);
    if (url.protocol !== 'http:') throw new Error(`waitFor: unsupported URL ${spec.http}`);
    const port = url.port || '80';
    // The inner script is itself quoted: path and host go in as printf arguments, never as its format.
    const script = `exec 3<>/dev/tcp/${url.hostname}/${port} && printf 'GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' ${quote(`${url.pathname}${url.search}`)} ${quote(url.host)} >&3 && IFS=' ' read -r _ code _ <&3 && case "$code" in 2??) exit 0;; *) exit 1;; esac`;
    return sh`timeout 2 bash -c ${script} 2>/dev/null`;
  }
  if (spec.cmd) return spec.cmd;
  throw new Error('waitFor needs port, http or cmd');
}

/** A human description of a wait target. */
export function describeWait(spec: WaitSpec): string {
  if (spec.port !== undefined) return `port ${spec.host ?? '127.0.0.1'}:${spec.port}`;
  if (spec.http !== undefined) return spec.http;
  // Quotes, not backticks: the text ends up in a single-quoted shell word, where backticks read
  // like a command substitution that never happens (shellcheck SC2016).
  return `"${spec.cmd?.toString()}"`;
}

/**
 * The whole wait as one remote command (one round trip): retry the check every `intervalSec`
 * until it passes or `timeoutSec` elapse, then fail with a message on stderr.
 */
export function waitLoop(spec: WaitSpec): Cmd {
  const interval = spec.intervalSec ?? 1;
  const msg = `timed out after ${spec.timeoutSec} s waiting for ${describeWait(spec)}`;
  return sh`end=$(( $(date +%s) + ${spec.timeoutSec} )); until ${waitCheck(spec)}; do if [ "$(date +%s)" -ge "$end" ]; then echo ${msg} >&2; exit 1; fi; sleep ${interval}; done`;
}

/** Task: wait for a port, URL or command (never a change; skipped in check mode). */
export function waitFor(spec: WaitSpec): Task {
  return {
    name: `wait for ${describeWait(spec)}`,
    facts: () => [],
    plan(): TaskPlan {
      return { changed: false, ops: [exec(waitLoop(spec), spec.timeoutSec + 10)], changes: [], notify: [] };
    },
  };
}

