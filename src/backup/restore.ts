/**
 * The plan of `airflow-ha restore`: a guarded point-in-time restore of the Patroni cluster from the
 * pgBackRest repository, as ordered steps of commands per host. Pure: src/backup/run.ts executes it.
 *
 * The procedure, and where each part comes from:
 * 1. Flush the WAL up to now into the repository (`pgbackrest check` switches WAL and waits for
 *    the archive; https://pgbackrest.org/command.html#command-check), while a primary runs.
 * 2. Pause Airflow: stop its services on every Airflow host (they would write to a database that is
 *    about to go back in time).
 * 3. Stop Patroni on every node, replicas first (stopping Patroni stops its PostgreSQL).
 * 4. Remove the cluster from the DCS: `patronictl remove` (https://patroni.readthedocs.io/en/v3.0.2/patronictl.html),
 *    answering its two prompts (the cluster name, "Yes I am aware"). Patroni creates replicas only
 *    while the initialize key is in the DCS, and without it the first node to start takes the
 *    cluster over ("Replica imaging and bootstrap",
 *    https://patroni.readthedocs.io/en/v3.0.2/replica_bootstrap.html; a node with a data directory
 *    and no initialize key keeps its data, "Convert a Standalone to a Patroni Cluster",
 *    https://patroni.readthedocs.io/en/latest/existing_data.html).
 * 5. On the leader-to-be, move the data directory aside (`<dir>.before-restore-<stamp>`: kept, never
 *    deleted) and run `pgbackrest restore --type=time --target=T --target-action=promote`
 *    (https://pgbackrest.org/user-guide.html#pitr; without `--set` pgBackRest picks the newest
 *    backup that ends before T, https://pgbackrest.org/command.html#command-restore).
 * 6. Start that PostgreSQL alone (pg_ctl, on 127.0.0.1 only, hot_standby off so the primary's
 *    max_connections need not match) until it has replayed the archive to T and promoted itself;
 *    then remove the recovery settings pgBackRest wrote to postgresql.auto.conf (`ALTER SYSTEM
 *    RESET`: a replica cloned from it would otherwise stop at T too), checkpoint and stop it.
 * 7. Start Patroni there first: it registers the restored data directory as the cluster and takes
 *    the leader lock.
 * 8. Re-create the replicas: each other node's data directory is moved aside, and Patroni, finding
 *    it empty while the cluster exists, clones it from the new leader.
 * 9. Resume the Airflow services that ran before, and `pgbackrest check` the archive again (the new
 *    timeline archives to the same stanza).
 */
import { sh, type Cmd } from '../core/cmd.js';
import type { OsFamily } from '../facts/host.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { backupHost, backupStanza, pgbackrest } from '../components/backup.js';
import { patroniNodes, patroniPaths, primaryOrStreamingCheck, psql } from '../components/patroni.js';
import { waitCheck, waitLoop } from '../tasks/command.js';

/** One command of the plan, on one host. */
export interface RestoreStep {
  /** What the step does, for people ("stop Patroni on pg2"). */
  name: string;
  host: string;
  cmd: Cmd;
  /** Seconds the command may take. */
  timeoutSec: number;
  /** Written to the command's stdin (patronictl's prompts). */
  stdin?: string;
}

/** What the plan is made from: read from the live cluster by src/backup/run.ts before anything changes. */
export interface RestoreInputs {
  /** The node that becomes the leader: the current leader if there is one, else the first postgresql host. */
  leader: string;
  /** Whether a primary runs now (then the WAL is flushed to the repository first). */
  primaryRunning: boolean;
  /** The recovery target, normalized by {@link parseTarget}; absent: the end of the archive. */
  target?: string;
  /** Suffix of the folders the old data directories are moved to (e.g. `20261207T024500Z`). */
  stamp: string;
  /** Per Airflow host, the units that are active now (stopped in the pause, started again at the end). */
  airflowUnits: ReadonlyMap<string, readonly string[]>;
  family: OsFamily;
}

/**
 * `--to TIMESTAMP`: ISO 8601 with a zone (`2026-12-07T02:45:00Z`, `2026-12-07 02:45:00+03:30`),
 * as PostgreSQL's `recovery_target_time` wants it: `YYYY-MM-DD HH:MM:SS.mmm+00` in UTC.
 * @throws Error for text that is not such a time, has no zone (ambiguous), or lies after `nowMs`.
 */
export function parseTarget(text: string, nowMs: number): string {
  const t = text.trim();
  if (!/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i.test(t)) {
    throw new Error(`--to "${text}": give an ISO 8601 time with its zone, e.g. 2026-12-07T02:45:00Z or "2026-12-07 02:45:00+03:30"`);
  }
  const normalized = t.replace(' ', 'T').replace(/([+-]\d{2})$/, '$1:00').replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const ms = Date.parse(normalized);
  if (Number.isNaN(ms)) throw new Error(`--to "${text}" is not a valid time`);
  if (ms > nowMs) throw new Error(`--to "${text}" lies in the future (now ${new Date(nowMs).toISOString()}): nothing to restore to yet`);
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '+00');
}

/** `moved aside` folder of a data directory. */
export function asideDir(dataDir: string, stamp: string): string {
  return `${dataDir}.before-restore-${stamp}`;
}

/** The pgbackrest restore command on the leader-to-be (as postgres, which owns the data directory). */
export function restoreCommand(inv: Inventory, target: string | undefined): Cmd {
  const args = [`--stanza=${backupStanza(inv)}`, ...(target ? ['--type=time', `--target=${target}`, '--target-action=promote'] : []), 'restore'];
  return sh`cd / && runuser -u postgres -- pgbackrest ${args}`;
}

/**
 * The restore, step by step, for `inputs`. Every command is idempotent enough to be re-run by hand
 * after a failure (each names its host); none deletes data: old data directories are moved aside.
 * @throws Error when the inventory has no backup host or `inputs.leader` is no PostgreSQL host.
 */
export function restorePlan(inv: Inventory, inputs: RestoreInputs): RestoreStep[] {
  const repo = backupHost(inv);
  if (!repo) throw new Error('no host has the role backup: there is no repository to restore from');
  const nodes = patroniNodes(inv);
  const leader = nodes.find((h) => h.name === inputs.leader);
  if (!leader) throw new Error(`${inputs.leader} is not a PostgreSQL host`);
  const others = nodes.filter((h) => h.name !== leader.name);
  const p = patroniPaths(inputs.family, inv.cluster.versions.postgresql);
  const scope = inv.cluster.name;
  const api = (h: Host) => `http://${h.address}:${inv.cluster.ports.patroniApi}`;
  const pgCtl = `${p.binDir}/pg_ctl`;
  const log = `${p.dataDir.replace(/\/[^/]+$/, '')}/restore-${inputs.stamp}.log`;
  const aside = asideDir(p.dataDir, inputs.stamp);
  // Moves the data directory aside (once: a re-run finds it moved) and leaves an empty one, 0700 postgres.
  const moveAside = sh`if [ -e ${p.dataDir} ] && [ ! -e ${aside} ]; then mv ${p.dataDir} ${aside}; fi && install -d -m 0700 -o postgres -g postgres ${p.dataDir}`;
  const stopped = sh`! runuser -u postgres -- ${pgCtl} -D ${p.dataDir} status >/dev/null 2>&1`;
  const q = psql(inv);
  // `a`, then the wait `b` only if `a` succeeded (a wait loop is several commands: braced).
  const thenWait = (a: Cmd, b: Cmd) => sh`${a} && { ${b}; }`;
  const steps: RestoreStep[] = [];
  const add = (name: string, host: string, cmd: Cmd, timeoutSec: number, stdin?: string) => steps.push({ name, host, cmd, timeoutSec, ...(stdin === undefined ? {} : { stdin }) });

  if (inputs.primaryRunning) add('flush the WAL written so far into the repository (pgbackrest check)', repo.name, pgbackrest(inv, ['--archive-timeout=60', 'check']), 120);
  for (const [host, units] of inputs.airflowUnits) if (units.length > 0) add(`pause Airflow on ${host}`, host, sh`systemctl stop ${[...units]}`, 180);
  for (const h of [...others, leader]) {
    add(`stop Patroni on ${h.name}`, h.name, thenWait(sh`systemctl stop patroni`, waitLoop({ cmd: stopped, timeoutSec: 120, intervalSec: 1 })), 150);
  }
  // The third answer (the leader's name) is asked only while a leader key is left in the DCS.
  add(`remove cluster ${scope} from the DCS (patronictl remove)`, leader.name, sh`patronictl -c ${p.config} remove ${scope}`, 60, `${scope}\nYes I am aware\n${leader.name}\n`);
  add(`move ${p.dataDir} aside on ${leader.name} (kept as ${aside})`, leader.name, moveAside, 600);
  add(`pgbackrest restore on ${leader.name}${inputs.target ? ` to ${inputs.target}` : ' to the end of the archive'}`, leader.name, restoreCommand(inv, inputs.target), 6 * 3600);
  add(
    `replay the archive on ${leader.name} until it promotes itself`,
    leader.name,
    thenWait(
      // pg_ctl -W returns before the postmaster has written postmaster.pid (its first act,
      // PostgreSQL 15 docs "Database File Layout"); until then `pg_ctl status` says "no server
      // running", so the loop waits for that file first (at most 60 s: a server that fails to
      // start never writes it, and the loop then shows its log).
      sh`runuser -u postgres -- ${pgCtl} -D ${p.dataDir} -W -l ${log} -o ${`-c listen_addresses=127.0.0.1 -c port=${inv.cluster.ports.postgres} -c hot_standby=off -c synchronous_standby_names=''`} start && i=0 && until [ -f ${`${p.dataDir}/postmaster.pid`} ] || [ "$i" -ge 60 ]; do sleep 1; i=$((i + 1)); done`,
      waitLoop({
        cmd: sh`{ runuser -u postgres -- ${pgCtl} -D ${p.dataDir} status >/dev/null 2>&1 || { tail -n 20 ${log} >&2; exit 1; }; } && [ "$(${q} -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]`,
        timeoutSec: 6 * 3600,
        intervalSec: 2,
      }),
    ),
    6 * 3600 + 60,
  );
  add(
    `remove the recovery settings on ${leader.name} and stop it`,
    leader.name,
    sh`${q} -c 'ALTER SYSTEM RESET restore_command' -c 'ALTER SYSTEM RESET recovery_target_time' -c 'ALTER SYSTEM RESET recovery_target_action' -c 'CHECKPOINT' && runuser -u postgres -- ${pgCtl} -D ${p.dataDir} -m fast -w -t 300 stop`,
    360,
  );
  add(`start Patroni on ${leader.name} (the new leader)`, leader.name, thenWait(sh`systemctl start patroni`, waitLoop({ cmd: waitCheck({ http: `${api(leader)}/leader`, timeoutSec: 2 }), timeoutSec: 300, intervalSec: 2 })), 330);
  for (const h of others) {
    add(`re-create replica ${h.name} (old data kept as ${aside})`, h.name, thenWait(sh`${moveAside} && systemctl start patroni`, waitLoop({ cmd: primaryOrStreamingCheck(inv), timeoutSec: 3600, intervalSec: 3 })), 3660);
  }
  for (const [host, units] of inputs.airflowUnits) if (units.length > 0) add(`resume Airflow on ${host}`, host, sh`systemctl start ${[...units]}`, 300);
  add('check WAL archiving from the restored cluster (pgbackrest check)', repo.name, pgbackrest(inv, ['--archive-timeout=60', 'check']), 120);
  return steps;
}

