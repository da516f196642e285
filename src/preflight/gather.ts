/**
 * Which preflight facts a host needs for the roles a run sets up on it, and reading them back into
 * {@link HostPreflightFacts}. Pure: src/run/execute.ts gathers the facts in the connect round trip.
 */
import { AIRFLOW_PYTHON, airflowPaths } from '../components/airflow.js';
import { etcdPaths } from '../components/etcd.js';
import type { Fact, FactSet } from '../facts/fact.js';
import { osReleaseFact } from '../facts/host.js';
import { AIRFLOW_ROLES, dagsMode } from '../inventory/rules.js';
import type { Inventory, Role } from '../inventory/schema.js';
import { capacityFact, clockEndFact, clockStartFact, etcdSchemeFact, installedAirflowFact, listenersFact, nfsSupportFact, packageOffersFact, pythonsFact } from './facts.js';
import { hostPins } from './pins.js';
import { clockOffset, type HostPreflightFacts } from './rules.js';

/** The interpreter the Airflow virtualenv is made with (src/components/airflow.ts). */
export const AIRFLOW_INTERPRETER = `python${AIRFLOW_PYTHON}`;

/** The facts of one host's preflight and how to read them. */
export interface PreflightRequest {
  /** In gathering order: the clock first and last (they bound the round trip, see rules.ts clockOffset). */
  facts: Fact<unknown>[];
  /** Reads the gathered set; `sentAt`/`receivedAt` are this machine's clock around the round trip, seconds since the epoch. */
  read(set: FactSet, sentAt: number, receivedAt: number): HostPreflightFacts;
}

/** The preflight facts for a host on which the run sets up `roles` (none: the OS and the clock only). */
export function preflightRequest(inv: Inventory, roles: readonly Role[]): PreflightRequest {
  const airflow = roles.some((r) => AIRFLOW_ROLES.includes(r));
  const nfs = dagsMode(inv) === 'nfs' && (airflow || roles.includes('nfs'));
  const pythons = pythonsFact(['python3', AIRFLOW_INTERPRETER]);
  const installed = installedAirflowFact(airflowPaths(inv).venv);
  const names = { debian: hostPins(inv, roles, 'debian').map((p) => p.name), rhel: hostPins(inv, roles, 'rhel').map((p) => p.name) };
  const packages = names.debian.length + names.rhel.length > 0 ? packageOffersFact(names) : undefined;
  const some = roles.length > 0;
  const etcd = roles.includes('etcd');
  // Either family's env file: the OS is learnt in this same round trip.
  const scheme = etcdSchemeFact([etcdPaths(inv, 'debian').envFile, etcdPaths(inv, 'rhel').envFile]);
  const facts: Fact<unknown>[] = [
    clockStartFact,
    osReleaseFact,
    ...(some ? [capacityFact, listenersFact] : []),
    ...(nfs ? [nfsSupportFact] : []),
    ...(airflow ? [pythons, installed] : []),
    ...(etcd ? [scheme] : []),
    ...(packages ? [packages] : []),
    clockEndFact,
  ];
  return {
    facts,
    read(set, sentAt, receivedAt) {
      const clock = clockOffset(set.get(clockStartFact), set.get(clockEndFact), sentAt, receivedAt);
      return {
        os: set.get(osReleaseFact),
        ...(clock ? { clock } : {}),
        ...(some ? { capacity: set.get(capacityFact), listeners: set.get(listenersFact) } : {}),
        ...(nfs ? { nfs: set.get(nfsSupportFact) } : {}),
        ...(airflow ? { pythons: set.get(pythons), airflowInstalled: set.get(installed) ?? null } : {}),
        ...(packages ? { packages: set.get(packages) } : {}),
        ...(etcd ? { etcdScheme: set.get(scheme) ?? null } : {}),
      };
    },
  };
}
