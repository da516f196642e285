/**
 * Celery's queue settings per Airflow major: what a RabbitMQ node loss costs the queued tasks.
 * Pure data and one renderer; airflow.ts puts the settings into airflow.cfg.
 *
 * Sources:
 * - Celery 5.5 configuration: https://docs.celeryq.dev/en/v5.5.0/userguide/configuration.html
 *   (`task_default_queue_type`, "quorum" since 5.5; `worker_detect_quorum_queues`, default True,
 *   turns global QoS off when a queue is a quorum queue; `broker_transport_options`).
 * - Kombu's py-amqp transport: `confirm_publish` in the transport options waits for the broker's
 *   publisher confirm of each message (https://docs.celeryq.dev/projects/kombu/en/stable/reference/kombu.transport.pyamqp.html).
 * - The Airflow Celery provider: `[celery] celery_config_options` is the import path of the dict
 *   Celery is configured from (default `airflow.providers.celery.executors.default_celery.DEFAULT_CELERY_CONFIG`),
 *   whose `task_acks_late` is True and whose `visibility_timeout` applies to Redis/SQS brokers only
 *   (https://airflow.apache.org/docs/apache-airflow-providers-celery/stable/configurations-ref.html,
 *   source of `default_celery.py`).
 * - RabbitMQ quorum queues: https://www.rabbitmq.com/docs/quorum-queues (a majority of the nodes
 *   keeps every message; a node loss costs nothing while a majority runs).
 */

/** What one Airflow major gets for its Celery queues. */
export interface CeleryQueueSettings {
  /** The Celery line the major's constraints/provider bring (for people). */
  celery: string;
  /** Every Celery queue is a quorum queue (replicated on a majority of the RabbitMQ nodes). */
  quorumQueues: boolean;
  /**
   * Keys merged over the provider's DEFAULT_CELERY_CONFIG by the module that
   * `[celery] celery_config_options` names (empty: the provider's defaults as they are).
   */
  celeryConfig: Readonly<Record<string, unknown>>;
  /** What a RabbitMQ node loss costs the queued tasks, for the `broker:node-loss` warning; undefined when nothing is lost. */
  nodeLoss?: string;
}

/**
 * The table, by Airflow major. Airflow 2.x is taken as Celery < 5.5 (Airflow 2.9's constraints pin
 * an older Celery, which cannot consume quorum queues: it needs global QoS, which quorum queues
 * refuse; src/components/rabbitmq.ts): classic queues on one node, behaviour unchanged. Airflow 3's Celery provider needs Celery >= 5.5: every queue is declared as a
 * quorum queue and every publish waits for the broker's confirm.
 */
export const CELERY_QUEUES: Readonly<Record<2 | 3, CeleryQueueSettings>> = {
  2: {
    celery: '< 5.5',
    quorumQueues: false,
    celeryConfig: {},
    nodeLoss:
      'Celery < 5.5 uses classic queues, each on the one RabbitMQ node that declared it: while that node is down its queued tasks are stranded (not lost: they are on its disk) and publishers to it fail over to another node only for new queues; they run when the node returns',
  },
  3: {
    celery: '>= 5.5',
    quorumQueues: true,
    celeryConfig: {
      task_default_queue_type: 'quorum',
      worker_detect_quorum_queues: true,
      broker_transport_options: { confirm_publish: true },
    },
  },
};

/** The row of Airflow `version` (`3.0.2` -> 3). Throws for a major without one. */
export function celeryQueueSettings(version: string): CeleryQueueSettings {
  const major = Number(version.split('.')[0]);
  const row = CELERY_QUEUES[major as 2 | 3];
  if (!row) throw new Error(`Airflow ${version}: no Celery queue settings for major ${major}`);
  return row;
}

/** The Python module `[celery] celery_config_options` imports: `<module>.CELERY_CONFIG`, in `$AIRFLOW_HOME/config` (on Airflow's sys.path). */
export const CELERY_CONFIG_MODULE = 'airflow_ha_celery';

/** A Python literal of `v` (dicts, booleans, strings, numbers). */
function pyLiteral(v: unknown): string {
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (v && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${pyLiteral(x)}`).join(', ')}}`;
  throw new Error(`pyLiteral: cannot write ${String(v)}`);
}

/**
 * The module's source for `s`, or undefined when the row keeps the provider's defaults. Nested
 * dicts (`broker_transport_options`) are merged over the provider's, so its own keys stay.
 */
export function celeryConfigModule(s: CeleryQueueSettings): string | undefined {
  const entries = Object.entries(s.celeryConfig);
  if (entries.length === 0) return undefined;
  const lines = entries.map(([k, v]) =>
    v && typeof v === 'object' ? `    ${JSON.stringify(k)}: {**DEFAULT_CELERY_CONFIG.get(${JSON.stringify(k)}, {}), **${pyLiteral(v)}},` : `    ${JSON.stringify(k)}: ${pyLiteral(v)},`,
  );
  return [
    '# Managed by airflow-ha: Celery settings over the Airflow Celery provider\'s defaults.',
    'from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG',
    '',
    'CELERY_CONFIG = {',
    '    **DEFAULT_CELERY_CONFIG,',
    ...lines,
    '}',
    '',
  ].join('\n');
}
