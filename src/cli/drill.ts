/**
 * `airflow-ha drill`: fail one component of the live cluster at a time under load and measure
 * detection, the longest gap and the acknowledged items lost (src/drill/). Refuses without `--yes`.
 */
import { ExitCode, InputError } from '../core/errors.js';
import type { LoadedInventory } from '../inventory/load.js';
import { fanOut } from '../run/events.js';
import { journalReporter } from '../run/journal.js';
import { renderReport } from '../status/render.js';
import { DEFAULT_DRILL, runDrill, UNDO_MARGIN_SEC } from '../drill/run.js';
import { renderDrillTable } from '../drill/report.js';
import { isScenarioName, scenarioIntent, SCENARIOS, type ScenarioName } from '../drill/scenarios.js';
import { jsonReporter, plainReporter } from './output.js';
import { operator, type Io } from './run.js';

export interface DrillFlags {
  scenario: string[];
  yes?: boolean;
  json?: boolean;
  hold: string;
  acceptNewHostKeys?: boolean;
  sshConfig?: string;
  knownHosts?: string;
}

/** `--scenario a b` and `--scenario a,b` alike, each name checked. @throws InputError naming the known ones. */
export function parseScenarios(words: readonly string[]): ScenarioName[] {
  const names = words.flatMap((w) => w.split(',')).map((w) => w.trim()).filter(Boolean);
  if (names.length === 0) throw new InputError(`drill: give at least one --scenario (${SCENARIOS.join(', ')})`);
  const out: ScenarioName[] = [];
  for (const n of names) {
    if (!isScenarioName(n)) throw new InputError(`drill: unknown scenario "${n}" (known: ${SCENARIOS.join(', ')})`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

/** Runs the command; returns the exit code (README "Exit codes" and "drill"). */
export async function drillCommand(io: Io, loaded: LoadedInventory, o: DrillFlags, command: string): Promise<number> {
  const scenarios = parseScenarios(o.scenario);
  const holdSec = Number(o.hold);
  if (!Number.isInteger(holdSec) || holdSec < 5) throw new InputError(`drill: --hold takes whole seconds >= 5, got "${o.hold}"`);
  const settings = { holdSec, undoAfterSec: holdSec + UNDO_MARGIN_SEC };
  const intents = scenarios.map((s) => scenarioIntent(loaded.inventory, s, settings));
  if (!o.yes) {
    io.err(`drill: refusing without --yes. This would, on the live cluster ${loaded.inventory.cluster.name}, one scenario after the other:\n${intents.map((l) => `  ${l}`).join('\n')}\nunder a load of writes through the VIP, confirmed publishes and (worker, scheduler, dag-processor) Celery tasks; then restore, wait for status healthy and remove every drill object. Nothing was done.\n`);
    return ExitCode.badInput;
  }
  const [{ readSecrets }, { buildTransport }, { secretsSettings }] = await Promise.all([import('../inventory/secrets.js'), import('./transport.js'), import('./secrets.js')]);
  const secrets = await readSecrets(loaded.stateDir, secretsSettings(loaded, io.env));
  if (!secrets) throw new InputError(`drill: no secrets file in ${loaded.stateDir}, or it lacks secrets (the cluster was not bootstrapped from here)`);
  const runId = `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
  const human = { diff: false, verbose: false };
  const reporter = fanOut(o.json ? jsonReporter(io) : plainReporter(io, human), journalReporter(loaded.stateDir, runId));
  const transport = await buildTransport(loaded, io, o, { retries: 0, keepaliveIntervalSec: 5 });
  try {
    const result = await runDrill(
      { inventory: loaded.inventory, secrets, transport, reporter, operator: operator(io), command },
      { scenarios, ...DEFAULT_DRILL, ...settings },
    );
    if (result.refusedBy) io.err(`${renderReport(result.refusedBy, { verdict: (_v, t) => t, dim: (t) => t })}\n`);
    if (o.json) io.out(`${JSON.stringify({ type: 'drill_report', exitCode: result.exitCode, scenarios: result.figures, ...(result.error ? { error: result.error } : {}) })}\n`);
    else if (result.figures.length) io.out(`\n${renderDrillTable(result.figures)}\n`);
    if (result.error) io.err(`drill: ${result.error}\n`);
    return result.exitCode;
  } finally {
    await reporter.close?.();
    await transport.close();
  }
}
