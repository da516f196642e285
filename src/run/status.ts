/**
 * Runs `status`: every host in parallel, each host's probes in ONE script (one round trip), each
 * host bounded by a connect deadline and an exec deadline. Read-only: no lock, nothing changed.
 * An unreachable host is recorded with its reason; the others are still judged.
 */
import { randomBytes } from 'node:crypto';
import { hostProbes, judgeAll, type HostResult, type ProbeResult, type StatusContext } from '../status/checks.js';
import { buildReport, type StatusReport } from '../status/model.js';
import { parseProbeClock, parseProbeOutput, probeScript, type Probe } from '../status/script.js';
import type { FactOutput } from '../facts/fact.js';
import type { Transport } from '../ssh/transport.js';

/** Seconds allowed for connecting to one host (TCP + SSH handshake) before it is reported unreachable. */
export const STATUS_CONNECT_TIMEOUT_SEC = 5;

function deadline<T>(p: Promise<T>, sec: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${sec} s`)), sec * 1000);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * What `status --watch` keeps between its reports: per host, the last answer of each probe that has
 * a {@link Probe.refreshSec} and when it was read (ms, the clock of `collectStatus`'s `now`). Only
 * answers that completed (exit 0 within the probe's time) are kept, so a failing check is asked
 * again on the next tick; a host that was unreachable forgets its answers.
 */
export class StatusCache {
  private readonly byHost = new Map<string, Map<string, { result: ProbeResult; atMs: number }>>();

  /** The kept answers of `host` still younger than their probe's refreshSec at `nowMs`, with their age. */
  fresh(host: string, probes: readonly Probe[], nowMs: number): Map<string, ProbeResult> {
    const kept = this.byHost.get(host);
    const out = new Map<string, ProbeResult>();
    if (!kept) return out;
    for (const p of probes) {
      const k = kept.get(p.id);
      if (p.refreshSec !== undefined && k && nowMs - k.atMs < p.refreshSec * 1000) out.set(p.id, { ...k.result, ageSec: (nowMs - k.atMs) / 1000 });
    }
    return out;
  }

  /** Records the answers just read from `host` for its probes with a refreshSec. */
  keep(host: string, probes: readonly Probe[], results: ReadonlyMap<string, ProbeResult>, atMs: number): void {
    const kept = this.byHost.get(host) ?? new Map<string, { result: ProbeResult; atMs: number }>();
    for (const p of probes) {
      const r = results.get(p.id);
      if (p.refreshSec !== undefined && r && r.code === 0) kept.set(p.id, { result: r, atMs });
    }
    this.byHost.set(host, kept);
  }

  /** Forgets everything of `host` (it was unreachable). */
  forget(host: string): void {
    this.byHost.delete(host);
  }
}

/**
 * Checks every inventory host and judges the results. Never throws for a host's failure: it becomes
 * an unreachable host in the report. `now` is injectable for tests. With `cache` (`status --watch`),
 * a slow-changing probe whose last answer is younger than its {@link Probe.refreshSec} is not asked
 * again: its kept answer is judged, marked with its age.
 */
export async function collectStatus(ctx: StatusContext, transport: Transport, opts: { connectTimeoutSec?: number; now?: () => number; cache?: StatusCache } = {}): Promise<StatusReport> {
  const now = opts.now ?? Date.now;
  const started = now();
  const results = new Map<string, HostResult>();
  await Promise.all(
    ctx.inventory.hosts.map(async (h) => {
      const t0 = now();
      const all = hostProbes(ctx, h);
      const reused = opts.cache?.fresh(h.name, all, t0) ?? new Map<string, ProbeResult>();
      const probes = all.filter((p) => !reused.has(p.id));
      const execTimeout = Math.max(...probes.map((p) => p.timeoutSec), 1) + 3;
      try {
        const conn = await deadline(transport.connect(h.name), opts.connectTimeoutSec ?? STATUS_CONNECT_TIMEOUT_SEC, 'SSH connect');
        const nonce = randomBytes(8).toString('hex');
        const sentAtMs = now();
        let firstByteAtMs: number | undefined;
        // The script prints each probe as it ends; at the deadline the channel is abandoned and what
        // arrived is kept: the host is reached, and a probe without its output is its own
        // "no answer" line, never the host's.
        const res = await deadline(conn.exec(probeScript(probes, nonce), { timeoutSec: execTimeout, onStdout: () => (firstByteAtMs ??= now()) }), execTimeout + 2, 'status script');
        const outputs = parseProbeOutput(res.stdout, probes.length, nonce);
        const asked = new Map<string, ProbeResult>(probes.map((p, i) => [p.id, { ...(outputs[i] as FactOutput), waitedSec: execTimeout, timeoutSec: p.timeoutSec }]));
        opts.cache?.keep(h.name, probes, asked, t0);
        const map = new Map<string, ProbeResult>([...asked, ...reused]);
        const hostMs = parseProbeClock(res.stdout, nonce);
        const clock = hostMs !== undefined && firstByteAtMs !== undefined ? { hostMs, sentAtMs, receivedAtMs: firstByteAtMs } : undefined;
        results.set(h.name, { reach: { name: h.name, address: h.address, reachable: true, ms: now() - t0 }, outputs: map, ...(clock ? { clock } : {}) });
      } catch (e) {
        opts.cache?.forget(h.name);
        const reason = ((e as { reason?: string }).reason ?? (e as Error).message).split('\n')[0] ?? 'failed';
        results.set(h.name, { reach: { name: h.name, address: h.address, reachable: false, reason, ms: now() - t0 } });
      }
    }),
  );
  const lines = judgeAll(ctx, results);
  const hosts = ctx.inventory.hosts.map((h) => (results.get(h.name) as HostResult).reach);
  return buildReport(ctx.inventory.cluster.name, new Date(started), now() - started, lines, hosts);
}
