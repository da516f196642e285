/**
 * Runs `status`: every host in parallel, each host's probes in ONE script (one round trip), each
 * host bounded by a connect deadline and an exec deadline. Read-only: no lock, nothing changed.
 * An unreachable host is recorded with its reason; the others are still judged.
 */
import { randomBytes } from 'node:crypto';
import { hostProbes, judgeAll, type HostResult, type ProbeResult, type StatusContext } from '../status/checks.js';
import { buildReport, type StatusReport } from '../status/model.js';
import { parseProbeClock, parseProbeOutput, probeScript } from '../status/script.js';
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
 * Checks every inventory host and judges the results. Never throws for a host's failure: it becomes
 * an unreachable host in the report. `now` is injectable for tests.
 */
export async function collectStatus(ctx: StatusContext, transport: Transport, opts: { connectTimeoutSec?: number; now?: () => number } = {}): Promise<StatusReport> {
  const now = opts.now ?? Date.now;
  const started = now();
  const results = new Map<string, HostResult>();
  await Promise.all(
    ctx.inventory.hosts.map(async (h) => {
      const t0 = now();
      const probes = hostProbes(ctx, h);
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
        const map = new Map<string, ProbeResult>(probes.map((p, i) => [p.id, { ...(outputs[i] as FactOutput), waitedSec: execTimeout, timeoutSec: p.timeoutSec }]));
        const hostMs = parseProbeClock(res.stdout, nonce);
        const clock = hostMs !== undefined && firstByteAtMs !== undefined ? { hostMs, sentAtMs, receivedAtMs: firstByteAtMs } : undefined;
        results.set(h.name, { reach: { name: h.name, address: h.address, reachable: true, ms: now() - t0 }, outputs: map, ...(clock ? { clock } : {}) });
      } catch (e) {
        const reason = ((e as { reason?: string }).reason ?? (e as Error).message).split('\n')[0] ?? 'failed';
        results.set(h.name, { reach: { name: h.name, address: h.address, reachable: false, reason, ms: now() - t0 } });
      }
    }),
  );
  const lines = judgeAll(ctx, results);
  const hosts = ctx.inventory.hosts.map((h) => (results.get(h.name) as HostResult).reach);
  return buildReport(ctx.inventory.cluster.name, new Date(started), now() - started, lines, hosts);
}
