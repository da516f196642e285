/**
 * `airflow-ha upgrade`: the rolling change of the Airflow services from the version of `from` to
 * that of `to` (two inventories that differ in `cluster.versions.airflow` only), and `--rollback`,
 * the same order back with a database downgrade. Data only: steps and the tasks they want (README
 * "Upgrading Airflow"; the version checks are src/components/airflow-upgrade.ts).
 *
 * Order: the new virtualenv beside the old one on every Airflow host (nothing stops); the
 * schedulers, triggerers and DAG processors stopped (the migration must run with no Airflow
 * component running, the UI excepted: it keeps serving from the old version); the workers drained
 * as `remove-worker` does and stopped; `db migrate` once (or `db downgrade` for a rollback); the
 * schedulers etc. started on the new version; then each UI server in turn: taken out of every
 * HAProxy (maintenance), restarted on the new version, back in once every HAProxy sees it UP, so
 * the UI through the VIP stays up with two or more UI servers; then the workers pool by pool (a
 * pool: the hosts consuming the same queues), Flower, HAProxy's final UI check, the firewall of
 * the new version (base step), and the health gate through the VIP.
 */
import { sh, type Cmd } from '../src/core/cmd.js';
import {
  airflowCli,
  airflowConfigTasks,
  airflowHosts,
  airflowLayout,
  airflowServices,
  airflowVenvTasks,
  migrateHost,
  renderAirflowUnit,
  venvPruneTask,
  venvSwitchTask,
  webserverHealthCheck,
  workerDrainTasks,
  workerPingCheck,
  workerQueues,
  type AirflowServiceKind,
} from '../src/components/airflow.js';
import { haproxyTasks, type UiCheck } from '../src/components/haproxy.js';
import type { Host, Inventory } from '../src/inventory/schema.js';
import { AIRFLOW_ROLES } from '../src/inventory/rules.js';
import { selectHosts, type Playbook, type PlayContext, type Step } from '../src/run/playbook.js';
import { command } from '../src/tasks/command.js';
import { service, unit } from '../src/tasks/systemd.js';
import type { Task } from '../src/tasks/task.js';
import { airflowSteps } from './airflow.js';
import { baseStep } from './base.js';
import { haproxy } from './haproxy.js';

/** The services the database migration waits for: every writer but the UI and the workers. */
const CONTROL: readonly AirflowServiceKind[] = ['scheduler', 'triggerer', 'dag-processor'];

/** The HAProxy listener of the UI (templates/haproxy/haproxy.cfg.njk). */
export const UI_BACKEND = 'airflow_webserver';

const names = (hosts: readonly Host[]) => hosts.map((h) => h.name);
const hostsRunning = (inv: Inventory, kinds: readonly AirflowServiceKind[]) => airflowHosts(inv).filter((h) => airflowServices(inv, h).some((s) => kinds.includes(s.kind)));

/** `service` tasks stopping the units of `kinds` on `host` in `inv`'s layout (enabled kept). */
function stopTasks(inv: Inventory, host: Host, kinds: readonly AirflowServiceKind[]): Task[] {
  return airflowServices(inv, host)
    .filter((s) => kinds.includes(s.kind))
    .map((s) => service({ name: s.unit, enabled: true, state: 'stopped' }));
}

/**
 * On `host`: the `venv` link onto `to`'s version and airflow.cfg of `to` (no restart handler: the
 * steps restart each service in their order), then the units of `kinds` in `to`'s layout, written,
 * enabled and started; a unit of `from`'s layout that `to` does not have (2.x `airflow-webserver`
 * on 3.x) is stopped, disabled and its file removed.
 */
function startOnNew(from: Inventory, to: Inventory, ctx: PlayContext, kinds: readonly AirflowServiceKind[]): Task[] {
  const { host, secrets } = ctx;
  const svcs = airflowServices(to, host).filter((s) => kinds.includes(s.kind));
  const gone = airflowServices(from, host).filter((s) => kinds.includes(s.kind) && !svcs.some((n) => n.unit === s.unit));
  return [
    venvSwitchTask(to, to.cluster.versions.airflow),
    ...airflowConfigTasks(to, host, secrets, false),
    ...gone.flatMap((s) => [
      service({ name: s.unit, enabled: false, state: 'stopped' }),
      command({ name: `remove unit ${s.unit} (not in the Airflow ${airflowLayout(to.cluster.versions.airflow).major} layout)`, cmd: sh`rm -f ${`/etc/systemd/system/${s.unit}`} && systemctl daemon-reload`, unless: sh`! test -e ${`/etc/systemd/system/${s.unit}`}` }),
    ]),
    ...svcs.flatMap((s) => [unit({ name: s.unit, content: renderAirflowUnit(to, s) }), service({ name: s.unit, enabled: true, state: 'started' })]),
  ];
}

/**
 * A command on HAProxy's admin socket (`stats socket ... level admin`) through python3 (on every
 * host; socat is not): https://docs.haproxy.org/2.6/management.html "9.3. Unix Socket commands".
 * Prints HAProxy's answer; exit 1 when the socket cannot be reached.
 */
function haproxySocket(socket: string, line: string): Cmd {
  const py = 'import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall((sys.argv[2]+"\\n").encode())\nb=b""\nwhile True:\n c=s.recv(65536)\n if not c: break\n b+=c\nsys.stdout.write(b.decode())';
  return sh`python3 -c ${py} ${socket} ${line}`;
}

const socketOf = (ctx: PlayContext) => (ctx.facts.family === 'debian' ? '/run/haproxy/admin.sock' : '/var/lib/haproxy/stats');

/**
 * Gate: HAProxy on this host reports UI server `name` UP (`show stat` CSV: field 18 `status`),
 * i.e. it passed `rise` health checks after leaving maintenance.
 */
function serverUpCheck(ctx: PlayContext, name: string): Cmd {
  return sh`${haproxySocket(socketOf(ctx), 'show stat')} | awk -F, ${`$1 == "${UI_BACKEND}" && $2 == "${name}" && $18 == "UP" { ok = 1 } END { exit !ok }`}`;
}

/** Gate: the UI server on `host` answers its health path itself with HTTP 200 (python3; 5 s per try). */
function uiAnswers(inv: Inventory, host: Host): Cmd {
  const url = `http://${host.address}:${inv.cluster.ports.webserver}${airflowLayout(inv.cluster.versions.airflow).healthPath}`;
  return sh`python3 -c ${'import sys, urllib.request\nsys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=5).status == 200 else 1)'} ${url}`;
}

/** HAProxy on every haproxy host with the UI checked as `check` says (a change reloads it gracefully). */
function haproxyStep(name: string, inv: Inventory, check: UiCheck): Step {
  const gate = haproxy.steps[0]!.gate!;
  return {
    name,
    hosts: { roles: ['haproxy'] },
    tasks: ({ host, secrets, facts, operator }) => (inv.hosts.some((h) => h.roles.includes('webserver')) ? haproxyTasks(inv, host, secrets, facts.family, { uiCheck: check, tls: operator?.tls }) : []),
    gate,
  };
}

/** What differs between an upgrade and a rollback: the database step on the migrate host. */
export type UpgradeMode = 'upgrade' | 'rollback';

/**
 * The steps of an upgrade (or, `mode` rollback, of the way back) from `from` to `to`. The steps'
 * tasks read `to` or `from` as each needs, never the inventory the runner passes (which is `to`).
 * `drainTimeoutSec`: how long a worker's running tasks may take to finish.
 */
export function upgradePlaybook(from: Inventory, to: Inventory, mode: UpgradeMode, drainTimeoutSec: number): Playbook {
  const vFrom = from.cluster.versions.airflow;
  const vTo = to.cluster.versions.airflow;
  const major = airflowLayout(vFrom).major !== airflowLayout(vTo).major;
  const migrate = migrateHost(to);
  const steps: Step[] = [
    {
      name: `install Airflow ${vTo} beside ${vFrom}`,
      hosts: { roles: AIRFLOW_ROLES },
      // An upgrade keeps the running version for --rollback and removes any older one; a rollback keeps both.
      tasks: () => [...airflowVenvTasks(to, vTo), ...(mode === 'upgrade' ? [venvPruneTask(to, [vFrom, vTo])] : [])],
    },
  ];
  if (major) steps.push(haproxyStep('haproxy: UI servers checked by TCP connect while they change majors', to, 'tcp'));
  steps.push(
    {
      name: `stop the schedulers, triggerers and DAG processors (${vFrom})`,
      hosts: { names: names(hostsRunning(from, CONTROL)) },
      tasks: ({ host }) => stopTasks(from, host, CONTROL),
    },
    {
      name: `drain and stop the workers (${vFrom})`,
      hosts: { names: names(hostsRunning(from, ['worker'])) },
      tasks: ({ host }) => [...workerDrainTasks(from, host, drainTimeoutSec), ...stopTasks(from, host, ['worker'])],
    },
  );
  if (migrate) {
    steps.push({
      name: mode === 'upgrade' ? `airflow db migrate (${vTo}), once` : `airflow db downgrade --to-version ${vTo} (with ${vFrom}), once`,
      hosts: { names: [migrate.name] },
      tasks: (ctx) => {
        const current = sh`${airflowCli(to, ['db', 'check-migrations', '-t', '1'], vTo)} >/dev/null 2>&1`;
        const db =
          mode === 'upgrade'
            ? command({ name: `airflow db migrate (${vTo})`, cmd: airflowCli(to, ['db', 'migrate'], vTo), unless: current, timeoutSec: 1800 })
            : command({ name: `airflow db downgrade --to-version ${vTo} (${vFrom})`, cmd: airflowCli(from, ['db', 'downgrade', '--to-version', vTo, '--yes'], vFrom), unless: current, timeoutSec: 1800 });
        // A migration runs with the new version's config; a downgrade with the old (still current) one, then the config follows.
        const cfg = [venvSwitchTask(to, vTo), ...airflowConfigTasks(to, ctx.host, ctx.secrets, false)];
        return mode === 'upgrade' ? [...cfg, db] : [db, ...cfg];
      },
    });
  }
  steps.push({
    name: `start the schedulers, triggerers and DAG processors on ${vTo}`,
    hosts: { names: names(hostsRunning(to, CONTROL)) },
    tasks: (ctx) => startOnNew(from, to, ctx, CONTROL),
  });
  // Each UI server in turn, out of HAProxy while it restarts.
  for (const w of to.hosts.filter((h) => h.roles.includes('webserver'))) {
    steps.push(
      {
        name: `UI ${w.name}: out of HAProxy (maintenance)`,
        hosts: { roles: ['haproxy'] },
        tasks: (ctx) => [command({ name: `${UI_BACKEND}/${w.name} state maint`, cmd: sh`${haproxySocket(socketOf(ctx), `set server ${UI_BACKEND}/${w.name} state maint`)} >/dev/null` })],
      },
      {
        name: `UI ${w.name}: restart on ${vTo}`,
        hosts: { names: [w.name] },
        tasks: (ctx) => [...stopTasks(from, ctx.host, ['webserver']), ...startOnNew(from, to, ctx, ['webserver'])],
        gate: { name: `${w.name} answers ${airflowLayout(vTo).healthPath} itself`, on: 'each', check: ({ host }) => uiAnswers(to, host), timeoutSec: 180, intervalSec: 2 },
      },
      {
        name: `UI ${w.name}: back in HAProxy`,
        hosts: { roles: ['haproxy'] },
        tasks: (ctx) => [command({ name: `${UI_BACKEND}/${w.name} state ready`, cmd: sh`${haproxySocket(socketOf(ctx), `set server ${UI_BACKEND}/${w.name} state ready`)} >/dev/null` })],
        gate: { name: `every HAProxy has ${w.name} UP`, on: 'each', check: (ctx) => serverUpCheck(ctx, w.name), timeoutSec: 60, intervalSec: 1 },
      },
    );
  }
  // The workers pool by pool: the hosts that consume the same queues restart together.
  const pools = new Map<string, Host[]>();
  for (const h of to.hosts.filter((x) => x.roles.includes('worker'))) pools.set(workerQueues(h).join(','), [...(pools.get(workerQueues(h).join(',')) ?? []), h]);
  for (const [queues, hosts] of pools) {
    steps.push({
      name: `workers of ${queues}: start on ${vTo}`,
      hosts: { names: names(hosts) },
      tasks: (ctx) => startOnNew(from, to, ctx, ['worker']),
      gate: { name: `the workers of ${queues} answer a Celery ping`, on: 'each', check: ({ host }) => workerPingCheck(to, host), timeoutSec: 180, intervalSec: 3 },
    });
  }
  steps.push(
    {
      name: `Flower on ${vTo}`,
      hosts: { names: names(hostsRunning(to, ['flower'])) },
      tasks: (ctx) => [...stopTasks(from, ctx.host, ['flower']), ...startOnNew(from, to, ctx, ['flower'])],
    },
    haproxyStep(`haproxy: UI servers checked on ${airflowLayout(vTo).healthPath}`, to, 'http'),
    // The firewall of the new version (3.x workers need no replica port), and /etc/hosts etc. unchanged.
    baseStep,
    {
      name: 'airflow health through the VIP',
      hosts: { roles: ['webserver'] },
      tasks: () => [],
      gate: {
        name: `GET ${airflowLayout(vTo).healthPath} through the VIP: metadatabase, scheduler, triggerer and DAG processor healthy`,
        on: 'first',
        check: () => webserverHealthCheck(to),
        timeoutSec: 180,
        intervalSec: 3,
      },
    },
  );
  return {
    name: 'upgrade',
    description: `${mode} Airflow ${vFrom} -> ${vTo}: new virtualenv beside the old, schedulers paused, workers drained, database ${mode === 'upgrade' ? 'migrated' : 'downgraded'} once, UI servers one at a time behind HAProxy, workers pool by pool`,
    requiredRoles: [],
    steps,
  };
}

/**
 * What `upgrade` runs when the inventory already names the version: the Airflow steps of
 * `bootstrap` with HAProxy and the base system, which change nothing on a cluster that runs that
 * version (a second run), and finish the change of an interrupted one.
 */
export function convergePlaybook(version: string): Playbook {
  return {
    name: 'upgrade',
    description: `Airflow ${version} on every Airflow host (already the inventory's version: converge only)`,
    requiredRoles: [],
    steps: [baseStep, ...haproxy.steps, ...airflowSteps],
  };
}

/** Plan lines: each step with the hosts it selects in `inv` (steps without hosts are left out, as the runner skips them). */
export function describeSteps(pb: Playbook, inv: Inventory): string[] {
  return pb.steps
    .map((s) => ({ s, hosts: selectHosts(inv, s.hosts) }))
    .filter((x) => x.hosts.length > 0)
    .map((x, i) => `${i + 1}. ${x.s.name} [${x.hosts.map((h) => h.name).join(', ')}]`);
}
