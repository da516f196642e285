/**
 * The load of a drill: the command that starts templates/drill/load.py on an Airflow host, and the
 * settings it reads from stdin. Pure, except {@link loadScript} (reads the script from templates/).
 *
 * Interpreter: the Airflow virtualenv's python, run as the Airflow user (`runuser`), so the load
 * uses the libraries and the network path Airflow itself uses (psycopg2, amqp, celery); the script
 * falls back to the OS's python3 packages where the virtualenv lacks one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sh, type Cmd } from '../core/cmd.js';
import { Secret } from '../core/secret.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { Inventory } from '../inventory/schema.js';
import { airflowPaths, celerySsl, databaseEndpoint } from '../components/airflow.js';
import { AIRFLOW_DB, AIRFLOW_DB_USER } from '../components/patroni.js';
import { AIRFLOW_USER as RABBITMQ_AIRFLOW_USER, AIRFLOW_VHOST, brokerNodes } from '../components/rabbitmq.js';
import { templatesDir } from '../tasks/template.js';
import { DRILL_OBJECTS, type ScenarioPlan } from './scenarios.js';

/** Items per second of each stream (the issue asks for ~20 writes/s). */
export const LOAD_RATES = { db: 20, broker: 20, tasks: 2 } as const;

/** The settings load.py reads from the first line of stdin. Secrets stay {@link Secret}s until {@link loadStdin}. */
export interface LoadConfig {
  mode: 'load' | 'cleanup';
  run_id: string;
  stop_file: string;
  /** Seconds after which the load stops by itself (the drill died). */
  max_seconds: number;
  rate: { db: number; broker: number; tasks: number };
  db: { host: string; port: number; user: string; password: Secret; dbname: string; table: string };
  /** `ssl`: with cluster.tls, the Airflow user's key, the host certificate and the CA (AMQPS, as Celery connects). */
  broker: { nodes: string[]; user: string; password: Secret; vhost: string; queue: string; ssl: ReturnType<typeof celerySsl> };
  /** Present when the scenario needs Celery tasks: the workers' queue and how long to wait for results. */
  tasks?: { queue: string; settle_seconds: number };
}

/**
 * The load's settings for `plan` (or, without one, for a cleanup). The database is reached through
 * HAProxy's write port on the VIP (the path Airflow uses), the broker on AMQP at every RabbitMQ node
 * in inventory order (the first is the broker-node scenario's target).
 */
export function loadConfig(inv: Inventory, secrets: ClusterSecrets, o: { runId: string; plan?: ScenarioPlan; maxSeconds: number; settleSec: number }): LoadConfig {
  const db = databaseEndpoint(inv);
  return {
    mode: o.plan ? 'load' : 'cleanup',
    run_id: o.runId,
    stop_file: DRILL_OBJECTS.stopFile,
    max_seconds: o.maxSeconds,
    rate: { ...LOAD_RATES },
    db: { host: db.host, port: db.port, user: AIRFLOW_DB_USER, password: secrets.airflowDb, dbname: AIRFLOW_DB, table: DRILL_OBJECTS.table },
    broker: {
      nodes: brokerNodes(inv),
      user: RABBITMQ_AIRFLOW_USER,
      password: secrets.rabbitmqAirflow,
      vhost: AIRFLOW_VHOST,
      queue: DRILL_OBJECTS.queue,
      ssl: celerySsl(inv),
    },
    ...(o.plan?.taskQueue ? { tasks: { queue: o.plan.taskQueue, settle_seconds: o.settleSec } } : {}),
  };
}

/** The command that runs the load on an Airflow host: stdin's first line is the settings, the rest the script. */
export function loadCommand(inv: Inventory): Cmd {
  const boot = 'import sys,json;CFG=json.loads(sys.stdin.readline());exec(compile(sys.stdin.read(),"airflow-ha-drill-load","exec"))';
  return sh`runuser -u ${inv.cluster.airflow.user} -- ${`${airflowPaths(inv).venv}/bin/python`} -c ${boot}`;
}

/** stdin of {@link loadCommand}: the settings as one JSON line (secrets revealed here, and only here), then the script. */
export function loadStdin(cfg: LoadConfig, script: string): string {
  // JSON.stringify calls a Secret's toJSON (***) before the replacer sees it: read the holder's own value.
  const json = JSON.stringify(cfg, function (this: Record<string, unknown>, key: string, value: unknown) {
    const own = this[key];
    return own instanceof Secret ? own.reveal() : value;
  });
  return `${json}\n${script}`;
}

/** templates/drill/load.py. */
export function loadScript(): string {
  return readFileSync(path.join(templatesDir(), 'drill', 'load.py'), 'utf8');
}

/** One `DRILL {...}` line of the load's output, parsed; undefined for any other line. */
export function parseLoadLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('DRILL ')) return undefined;
  try {
    return JSON.parse(line.slice(6)) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
