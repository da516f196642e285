/**
 * The per-major table of the Airflow layout (which commands, units, health path, config template,
 * pip extras and secrets each Airflow major uses), apart from src/components/airflow.ts so that the
 * HAProxy component can read the UI's health path without importing the Airflow component. Pure data.
 */
import type { ClusterSecrets } from '../inventory/secrets.js';

/** The kinds of Airflow service airflow-ha runs. */
export type AirflowServiceKind = 'scheduler' | 'triggerer' | 'webserver' | 'dag-processor' | 'worker' | 'flower';

/**
 * What differs between Airflow majors: the service commands, the UI service's unit and health path,
 * the config template, the pip extras, and which secrets go where. Airflow 3 is a second row of this
 * table, not a second component. Every Airflow 3 fact below, with its source:
 * - `airflow api-server` replaces `airflow webserver`; it takes `--pid` and `--port`, and serves the
 *   UI, the REST API and the Execution API (`--apps`, default `all`):
 *   https://airflow.apache.org/docs/apache-airflow/3.1.3/cli-and-env-variables-ref.html ("api-server").
 *   Its port is `[api] port` (default 8080): https://airflow.apache.org/docs/apache-airflow/3.4.0/configurations-ref.html.
 * - The health JSON moved to `/api/v2/monitor/health`, same shape (`metadatabase`, `scheduler`,
 *   `triggerer`, `dag_processor`, each with a `status`):
 *   https://airflow.apache.org/docs/apache-airflow/3.4.0/administration-and-deployment/logging-monitoring/check-health.html.
 * - `airflow dag-processor` is a mandatory, separate service (the scheduler no longer parses):
 *   https://airflow.apache.org/docs/apache-airflow/3.1.0/installation/upgrading_to_airflow3.html.
 *   Several processors on one DAG bundle are not a supported HA setup (they parse the same files
 *   and historically deactivated each other's DAGs; horizontal scaling is the open
 *   apache/airflow#32966, see https://github.com/apache/airflow/discussions/69364): airflow-ha
 *   keeps one active processor under the etcd lock on 3.x as on 2.x.
 * - `[api] secret_key` replaces `[webserver] secret_key`:
 *   https://airflow.apache.org/docs/helm-chart/1.22.0/upgrading-to-airflow-3.html ("Move the secret key").
 * - `[api_auth] jwt_secret` signs the JWTs of the REST API and of the Execution API (HS512); every
 *   component that issues or checks them (the schedulers, the API servers) must share it, and an
 *   unset one is random per process: https://airflow.apache.org/docs/apache-airflow/3.2.2/security/jwt_token_authentication.html.
 * - workers call the Execution API at `[core] execution_api_server_url` (default
 *   `{[api] base_url}/execution/`): configurations-ref above, and the Celery provider's
 *   `execute_workload` (providers/celery/.../celery_executor_utils.py) reads exactly that key.
 * - `[core] auth_manager` defaults to the simple auth manager (development only); the FAB one is
 *   `airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager` from the FAB provider
 *   (https://airflow.apache.org/docs/apache-airflow-providers-fab/1.5.0/_api/airflow/providers/fab/index.html),
 *   whose CLI provides `airflow users create/list` (cli-and-env-variables-ref above: "The users and
 *   roles CLI commands are described in FAB provider documentation").
 * - the Celery executor is the Celery provider's
 *   `airflow.providers.celery.executors.celery_executor.CeleryExecutor`
 *   (https://airflow.apache.org/docs/apache-airflow-providers-celery/stable/celery_executor.html).
 * NOT verified: that `apache-airflow[fab]` is the extra that installs the FAB provider on 3.x (the
 * extra exists on 2.x; pip refuses an unknown extra only with a warning, so a wrong name would show
 * as a missing auth manager at `db migrate`).
 */
export interface AirflowLayout {
  major: 2 | 3;
  /** False for a layout described but not yet installable (the `airflow:version` rule refuses it). */
  implemented: boolean;
  /** The extras of the `apache-airflow[...]` requirement pip installs (constraints pin the providers they pull). */
  extras: readonly string[];
  /** `airflow` sub-command of each service. */
  commands: Readonly<Record<AirflowServiceKind, readonly string[]>>;
  /** systemd unit of each service. */
  units: Readonly<Record<AirflowServiceKind, string>>;
  /** Path of the UI's health JSON (`metadatabase.status`, `scheduler.status`). */
  healthPath: string;
  /** Template of airflow.cfg under templates/. */
  configTemplate: string;
  /** Secrets every host's config carries, by the config key they fill. */
  secrets: Readonly<Record<string, keyof ClusterSecrets>>;
}

const UNITS_2 = {
  scheduler: 'airflow-scheduler.service',
  triggerer: 'airflow-triggerer.service',
  webserver: 'airflow-webserver.service',
  'dag-processor': 'airflow-dag-processor.service',
  worker: 'airflow-worker.service',
  flower: 'airflow-flower.service',
} as const;

const COMMANDS_2 = {
  scheduler: ['scheduler'],
  triggerer: ['triggerer'],
  webserver: ['webserver'],
  'dag-processor': ['dag-processor'],
  worker: ['celery', 'worker'],
  flower: ['celery', 'flower'],
} as const;

/** The per-major table (see {@link AirflowLayout}). */
export const AIRFLOW_LAYOUTS: Readonly<Record<2 | 3, AirflowLayout>> = {
  2: {
    major: 2,
    implemented: true,
    commands: COMMANDS_2,
    extras: ['celery', 'postgres'],
    units: UNITS_2,
    healthPath: '/health',
    configTemplate: 'airflow/airflow.cfg.njk',
    secrets: { 'core.fernet_key': 'airflowFernetKey', 'webserver.secret_key': 'airflowSecretKey' },
  },
  3: {
    major: 3,
    implemented: true,
    extras: ['celery', 'fab', 'postgres'],
    commands: { ...COMMANDS_2, webserver: ['api-server'] },
    units: { ...UNITS_2, webserver: 'airflow-api-server.service' },
    healthPath: '/api/v2/monitor/health',
    configTemplate: 'airflow/airflow3.cfg.njk',
    secrets: { 'core.fernet_key': 'airflowFernetKey', 'api.secret_key': 'airflowSecretKey', 'api_auth.jwt_secret': 'airflowJwtSecret' },
  },
};

/**
 * The layout of `version` (`2.9.0` -> major 2). Throws for a major without a row, or one not
 * implemented yet (validate refuses those first, with rule `airflow:version`).
 */
export function airflowLayout(version: string): AirflowLayout {
  const major = Number(version.split('.')[0]);
  const layout = AIRFLOW_LAYOUTS[major as 2 | 3];
  if (!layout) throw new Error(`Airflow ${version}: no layout for major version ${major}`);
  if (!layout.implemented) throw new Error(`Airflow ${version}: the Airflow ${major} layout is not implemented yet`);
  return layout;
}

