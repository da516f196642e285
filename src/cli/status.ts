/**
 * `airflow-ha status` on the terminal: one report (table or `--json`), or `--watch` refreshing it in
 * place until Ctrl-C. Returns the exit code of the last report (README "Exit codes").
 */
import { collectStatus, StatusCache } from '../run/status.js';
import type { StatusContext } from '../status/checks.js';
import type { StatusReport } from '../status/model.js';
import { renderReport, type Paint } from '../status/render.js';
import type { Transport } from '../ssh/transport.js';
import { colours, type Streams } from './output.js';

function paintFor(colour: boolean): Paint {
  const c = colours(colour);
  return {
    verdict: (v, t) => (v === 'healthy' ? c.green(t) : v === 'degraded' ? c.yellow(t) : c.red.bold(t)),
    dim: (t) => c.dim(t),
  };
}

/** ANSI: cursor home and clear the screen (ECMA-48 CUP, ED). */
const CLEAR = '\x1b[H\x1b[2J';

export async function statusCommand(ctx: StatusContext, transport: Transport, io: Streams, opts: { json: boolean; watchSec?: number; all?: boolean }): Promise<number> {
  const paint = paintFor(io.colour);
  const show = (r: StatusReport, first: boolean) => {
    if (opts.json) io.out(`${JSON.stringify(r)}\n`);
    else io.out(`${opts.watchSec && io.isTTY ? CLEAR : first ? '' : '\n'}${renderReport(r, paint, { all: Boolean(opts.all) })}\n`);
  };
  // --watch keeps the slow-changing answers between ticks (Probe.refreshSec).
  const cache = opts.watchSec ? new StatusCache() : undefined;
  let report = await collectStatus(ctx, transport, cache ? { cache } : {});
  show(report, true);
  if (!opts.watchSec) return report.exitCode;
  let stop = false;
  let wake: (() => void) | undefined;
  const onSigint = () => {
    stop = true;
    wake?.();
  };
  process.once('SIGINT', onSigint);
  try {
    while (!stop) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, (opts.watchSec as number) * 1000);
      });
      if (stop) break;
      report = await collectStatus(ctx, transport, { cache: cache as StatusCache });
      show(report, false);
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  return report.exitCode;
}
