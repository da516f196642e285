/**
 * The pure half of `airflow-ha upgrade` (README "Upgrading Airflow"): which version jumps are
 * supported, what the DAG files use that Airflow 3.0 removed, and the plan as lines. No I/O: the
 * CLI reads the files and runs playbooks/upgrade.ts.
 *
 * Facts, with their sources:
 * - To 3.x from 2.x: "Make sure that you are on Airflow 2.7 or later"; "It is recommended to upgrade
 *   to latest 2.x and then to Airflow 3"; the database step is `airflow db migrate`, as from 2.7 on
 *   (https://airflow.apache.org/docs/apache-airflow/3.0.2/installation/upgrading_to_airflow3.html,
 *   Steps 1 and 5). airflow-ha installs 2.9 and later only (rule `airflow:version`), so every 2.x
 *   it runs may go to 3.x.
 * - `airflow db migrate` must run while no Airflow component runs
 *   (https://airflow.apache.org/docs/apache-airflow/stable/installation/setting-up-the-database.html).
 * - Back from 3.x: `airflow db downgrade --to-version X --yes`, run with the NEWER version installed
 *   (its Alembic scripts hold the downgrades; https://airflow.apache.org/docs/apache-airflow/stable/howto/usage-cli.html
 *   "Downgrading Airflow"); from 3.x the only 2.x target is 2.11 (apache/airflow#54371 "Allow
 *   downgrading to 2.11 from 3.x", backported to the 3.0 branch on 2025-08-13). Not verified: the
 *   first 3.0.x patch release that shipped it.
 */
import { InputError } from '../core/errors.js';
import type { FileTree } from '../tasks/release.js';

/** A parsed `MAJOR.MINOR.PATCH`. */
interface Semver {
  major: number;
  minor: number;
  patch: number;
}

function semver(v: string, what: string): Semver {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new InputError(`${what}: "${v}" is not a full Airflow version (MAJOR.MINOR.PATCH, e.g. 3.4.0)`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** Negative, zero or positive as `a` is older than, the same as or newer than `b` (full versions). */
export function compareVersions(a: string, b: string): number {
  const x = semver(a, 'version');
  const y = semver(b, 'version');
  return x.major - y.major || x.minor - y.minor || x.patch - y.patch;
}

/** What kind of jump an upgrade is: nothing, within a major, or across majors (2.x to 3.x: the layout changes). */
export type UpgradeKind = 'none' | 'minor' | 'major';

/** A checked jump: its kind and the advice that goes with it (printed with the plan). */
export interface UpgradePath {
  from: string;
  to: string;
  kind: UpgradeKind;
  notes: string[];
}

/**
 * Checks the jump from the running version `from` to `to` (both `MAJOR.MINOR.PATCH`; whether `to`
 * is installable at all is the rule `airflow:version` of the edited inventory).
 * @throws InputError (exit 2) for a downgrade (`--rollback` is the way back), a jump over a major
 *   (2.x to 4.x), or 2.x older than 2.7 to 3.x (the Airflow docs' prerequisite, see the module comment).
 */
export function checkUpgradePath(from: string, to: string): UpgradePath {
  const a = semver(from, 'the running version (cluster.versions.airflow)');
  const b = semver(to, '--to');
  const c = compareVersions(to, from);
  if (c === 0) return { from, to, kind: 'none', notes: [] };
  if (c < 0) throw new InputError(`upgrade --to ${to}: older than the running Airflow ${from}; a downgrade is not an upgrade (after an upgrade, \`upgrade --rollback\` returns to the previous version)`);
  if (b.major > a.major + 1) throw new InputError(`upgrade --to ${to}: Airflow does not support a jump from ${from} over a major version; upgrade to the newest ${a.major + 1}.x first`);
  if (b.major === a.major) return { from, to, kind: 'minor', notes: [] };
  if (a.major !== 2 || b.major !== 3) throw new InputError(`upgrade --to ${to}: no supported path from ${from} (airflow-ha knows 2.x to 3.x)`);
  if (a.minor < 7) throw new InputError(`upgrade --to ${to}: Airflow 3 needs Airflow 2.7 or later first (you run ${from}); upgrade within 2.x first`);
  const notes = [
    'the layout changes: the webserver becomes the api-server (health on /api/v2/monitor/health), airflow.cfg gets the Airflow 3 sections (shared JWT secret, execution_api_server_url through the VIP)',
  ];
  if (a.minor < 11) {
    notes.push(`Airflow recommends the newest 2.x before 3.x, and a database downgrade from 3.x reaches 2.11 only: from ${from}, \`--rollback\` will refuse (upgrade to 2.11 first to keep it)`);
  }
  return { from, to, kind: 'major', notes };
}

/**
 * Checks `--rollback` from the running `current` back to `previous` (the version the last upgrade
 * started from). Same major: the database is downgraded to `previous`; 3.x back to 2.x: only to 2.11.
 * @throws InputError (exit 2) when `previous` is not older, or a 3.x rollback targets a 2.x other than 2.11.
 */
export function checkRollbackPath(current: string, previous: string): UpgradePath {
  const a = semver(current, 'the running version');
  const b = semver(previous, 'the previous version');
  if (compareVersions(previous, current) >= 0) throw new InputError(`upgrade --rollback: the previous version ${previous} is not older than the running ${current}`);
  if (a.major === 3 && b.major === 2 && b.minor !== 11) {
    throw new InputError(`upgrade --rollback: Airflow ${current} can downgrade its database to 2.11 only, not to ${previous} (apache/airflow#54371); restore the database backup taken before the upgrade instead`);
  }
  return { from: current, to: previous, kind: a.major === b.major ? 'minor' : 'major', notes: [] };
}

/** One use in a DAG file of something Airflow 3.0 removed (`removed`) or moved to a provider with a shim that still works (`moved`). */
export interface DagFinding {
  file: string;
  /** 1-based. */
  line: number;
  severity: 'removed' | 'moved';
  /** What was found, e.g. `import airflow.contrib.hooks.aws_hook`. */
  what: string;
  /** What to do instead, and the source of the fact. */
  advice: string;
}

const UPGRADE_DOC = 'https://airflow.apache.org/docs/apache-airflow/3.0.0/installation/upgrading_to_airflow3.html';

/**
 * The context keys Airflow 3.0 removed ("Some Airflow context variables" of {@link UPGRADE_DOC},
 * Breaking Changes): a task that reads one fails.
 */
export const REMOVED_CONTEXT_KEYS = [
  'tomorrow_ds',
  'tomorrow_ds_nodash',
  'yesterday_ds',
  'yesterday_ds_nodash',
  'prev_ds',
  'prev_ds_nodash',
  'prev_execution_date',
  'prev_execution_date_success',
  'next_execution_date',
  'next_ds_nodash',
  'next_ds',
  'execution_date',
] as const;

/** An import rule: the module prefix, removed or moved, and the advice. */
interface ImportRule {
  prefix: string;
  severity: DagFinding['severity'];
  advice: string;
}

/**
 * Imports Airflow 3.0 removed or moved, each with its source:
 * - `airflow.contrib`: removed (apache/airflow#41366 "Remove `contrib`", merged 2024-08-10 for 3.0).
 * - `airflow.operators.subdag` / `SubDagOperator`: SubDAGs removed ({@link UPGRADE_DOC}, Breaking Changes).
 * - `airflow.utils.dates.days_ago`: removed (Ruff's AIR301 airflow3-removal, the checker the upgrade
 *   guide's Step 3 names: https://docs.astral.sh/ruff/rules/airflow3-removal).
 * - `airflow.operators.*` and `airflow.sensors.*` (BashOperator, PythonOperator, ...): moved to the
 *   standard provider `apache-airflow-providers-standard` ({@link UPGRADE_DOC} Step 4), with a
 *   compatibility layer that still works on 3.0 (Ruff's AIR312:
 *   https://docs.astral.sh/ruff/rules/airflow3-suggested-to-move-to-provider): reported as `moved`.
 */
const IMPORT_RULES: readonly ImportRule[] = [
  { prefix: 'airflow.contrib', severity: 'removed', advice: 'airflow.contrib is gone in 3.0: import from the airflow.providers.* package instead (apache/airflow#41366)' },
  { prefix: 'airflow.operators.subdag', severity: 'removed', advice: `SubDAGs are gone in 3.0: use TaskGroups (${UPGRADE_DOC})` },
  { prefix: 'airflow.utils.dates', severity: 'removed', advice: 'days_ago and the airflow.utils.dates helpers are gone in 3.0: use datetime/pendulum (ruff AIR301)' },
  { prefix: 'airflow.operators', severity: 'moved', advice: `moved to apache-airflow-providers-standard (airflow.providers.standard.operators.*); the old path still works on 3.0 (${UPGRADE_DOC} Step 4)` },
  { prefix: 'airflow.sensors', severity: 'moved', advice: `moved to apache-airflow-providers-standard (airflow.providers.standard.sensors.*); the old path still works on 3.0 (${UPGRADE_DOC} Step 4)` },
];

/** The first rule whose prefix is the module or a parent package of it. */
function importRule(module: string): ImportRule | undefined {
  return IMPORT_RULES.find((r) => module === r.prefix || module.startsWith(`${r.prefix}.`));
}

/** Python source without comments and with string contents kept (context keys live in Jinja strings): `#` to end of line outside quotes is cut. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

const CONTEXT_KEY = new RegExp(`\\b(${REMOVED_CONTEXT_KEYS.join('|')})\\b`, 'g');

/**
 * The findings of one Python DAG file `text` (path `file`, for the report): imports of removed or
 * moved modules (`import X`, `from X import ...`, `from airflow.operators import subdag`-style
 * parents included), `SubDagOperator` anywhere, and the removed context keys as whole words
 * (Jinja `{{ execution_date }}`, `context["prev_ds"]`, a task function's parameter). Line based: a
 * name in a triple-quoted docstring is reported too (a false positive is a line to read, a miss
 * a failed task). Pure.
 */
export function scanDagFile(file: string, text: string): DagFinding[] {
  const out: DagFinding[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = stripComment(raw);
    const at = { file, line: i + 1 };
    const imp = /^\s*(?:from\s+([\w.]+)\s+import\s+(.+)|import\s+(.+))$/.exec(line);
    if (imp) {
      const modules = imp[1] !== undefined ? [imp[1], ...imp[2]!.replace(/[()]/g, '').split(',').map((n) => `${imp[1]}.${n.trim().split(/\s+/)[0]}`)] : imp[3]!.split(',').map((m) => m.trim().split(/\s+/)[0]!);
      // The most specific rule of the statement (`from airflow.operators import subdag` is removed, not moved).
      const hits = modules.map((m) => ({ m, r: importRule(m) })).filter((h) => h.r !== undefined);
      const best = hits.find((h) => h.r!.severity === 'removed') ?? hits[0];
      if (best) out.push({ ...at, severity: best.r!.severity, what: `import ${imp[1] ?? best.m}${imp[1] ? ` (${imp[2]!.trim()})` : ''}`, advice: best.r!.advice });
    }
    if (/\bSubDagOperator\b/.test(line) && !out.some((f) => f.line === i + 1 && f.severity === 'removed')) {
      out.push({ ...at, severity: 'removed', what: 'SubDagOperator', advice: `SubDAGs are gone in 3.0: use TaskGroups (${UPGRADE_DOC})` });
    }
    for (const m of line.matchAll(CONTEXT_KEY)) {
      out.push({ ...at, severity: 'removed', what: `context key ${m[1]}`, advice: `no longer in a task's context in 3.0 (${UPGRADE_DOC}, Breaking Changes): use logical_date / data_interval_start / data_interval_end` });
    }
  });
  return out;
}

/** {@link scanDagFile} of every `*.py` of a DAG tree (sorted by file, then line). */
export function scanDags(tree: FileTree): DagFinding[] {
  return tree.files
    .filter((f) => f.path.endsWith('.py'))
    .flatMap((f) => scanDagFile(f.path, f.content.toString('utf8')))
    .sort((x, y) => x.file.localeCompare(y.file) || x.line - y.line);
}

/** The findings as report lines: `FILE:LINE: removed|moved in 3.0: WHAT: ADVICE`. */
export function formatFindings(findings: readonly DagFinding[]): string[] {
  return findings.map((f) => `${f.file}:${f.line}: ${f.severity} in 3.0: ${f.what}: ${f.advice}`);
}
