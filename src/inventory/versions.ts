/**
 * The component versions airflow-ha supports: what `cluster.versions` may pin. A version string
 * reaches package names, pins and paths (`/usr/lib/postgresql/<major>/bin`, PGDG's
 * `<major>/redhat/...`), so validate refuses one outside this table before anything uses it
 * (rule `version:<component>`); Airflow's own range is the rule `airflow:version` (rules.ts).
 *
 * | component    | supported            | why / source |
 * |--------------|----------------------|--------------|
 * | `postgresql` | major 15             | the majors whose parameter names are committed (src/inventory/data/, scripts/inventory-data.sh); Debian 12 ships 15 |
 * | `patroni`    | 3.x, 4.x             | Debian 12 ships 3.0.2, PGDG 4.x (4 renamed master to primary; both are handled); etcd3 DCS since 2.x |
 * | `etcd`       | 3.4, 3.5, 3.6        | the v3 API Patroni's `etcd3:` needs; Debian 12 ships 3.4.23 (../reference/ha-stack.md "etcd") |
 * | `rabbitmq`   | 3.10-3.13, 4.0-4.1   | Debian 12 ships 3.10.8; classic queues for Airflow 2, quorum queues for 3 (https://www.rabbitmq.com/docs/which-erlang) |
 * | `erlang`     | 25, 26, 27           | the Erlang/OTP majors those RabbitMQ versions run on (same page) |
 * | `python`     | 3.11                 | the one interpreter the Airflow hosts get (src/components/airflow.ts AIRFLOW_PYTHON) |
 *
 * A pin is a version prefix (`3.13.7` matches `3.13.7-1.el9`), optionally with an epoch (`1:26.2.5`).
 */
/**
 * The Python minor version of every Airflow host's virtualenv: the OS's own 3.11 on both families
 * (Debian 12 `python3`, RHEL 9 `python3.11`), and the constraints file of that version.
 */
export const AIRFLOW_PYTHON = '3.11';

/** One component's supported versions: `major` or `major.minor` prefixes. */
export interface SupportedVersions {
  /** `'15'` (a major) or `'3.5'` (major.minor): a pinned version must start with one of them. */
  readonly series: readonly string[];
  /** Whether the version must be exactly a series (PostgreSQL's major, part of package names and paths). */
  readonly exact?: boolean;
}

/** The supported PostgreSQL majors (each has its parameter names in src/inventory/data/). */
export const POSTGRESQL_MAJORS = ['15'] as const;

export const SUPPORTED_VERSIONS = {
  postgresql: { series: POSTGRESQL_MAJORS, exact: true },
  patroni: { series: ['3', '4'] },
  etcd: { series: ['3.4', '3.5', '3.6'] },
  rabbitmq: { series: ['3.10', '3.11', '3.12', '3.13', '4.0', '4.1'] },
  erlang: { series: ['25', '26', '27'] },
  python: { series: [AIRFLOW_PYTHON], exact: true },
} as const satisfies Record<string, SupportedVersions>;

export type VersionedComponent = keyof typeof SUPPORTED_VERSIONS;

/**
 * Whether `version` is within `component`'s supported series: exactly one of them when `exact`,
 * else one of them followed by the end, `.`, `-` or `~` (so `3.1` never matches series `3.13`).
 * An epoch (`1:`) is ignored.
 */
export function isSupportedVersion(component: VersionedComponent, version: string): boolean {
  const t: SupportedVersions = SUPPORTED_VERSIONS[component];
  const v = version.replace(/^[0-9]+:/, '');
  return t.series.some((s) => (t.exact ? v === s : v === s || (v.startsWith(s) && /^[.~-]/.test(v.slice(s.length)))));
}

/** `component`'s supported series for a message: `3.4.x, 3.5.x, 3.6.x`, or `15` when exact. */
export function describeSupported(component: VersionedComponent): string {
  const t: SupportedVersions = SUPPORTED_VERSIONS[component];
  return t.series.map((s) => (t.exact ? s : `${s}.x`)).join(', ');
}

/**
 * The newest Airflow 3 release with a constraints file: 3.4.0 (2026-11-06; release notes
 * https://airflow.apache.org/docs/apache-airflow/3.4.0/release_notes.html, constraints tag
 * `constraints-3.4.0`, https://github.com/apache/airflow/tree/constraints-3.4.0, whose
 * constraints-3.11.txt covers the virtualenv's Python 3.11: Airflow 3.3+ supports 3.10-3.14).
 * It is also the default of `cluster.versions.airflow`: a new cluster gets Airflow 3.
 */
export const AIRFLOW_3_NEWEST = '3.4.0';
