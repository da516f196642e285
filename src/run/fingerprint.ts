/**
 * The secrets fingerprint on the hosts: which set of secrets a host was set up with, so that a run
 * with another set (a lost secrets file generated anew, another cluster's file) is refused before
 * it pushes new passwords, a new Erlang cookie or a new fernet key into a live cluster.
 *
 * Every run that changes hosts writes {@link FINGERPRINT_PATH} (root:root 0600) on each host it
 * targets, before its first step; every run (plan too) reads it on connect and compares. The line
 * itself is {@link secretsFingerprint} (src/inventory/secrets.ts): it tells equal sets apart from
 * different ones and reveals no value.
 */
import { sh } from '../core/cmd.js';
import { exec, type Op } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import { fingerprintNames, secretsFingerprint, type ClusterSecrets } from '../inventory/secrets.js';

/** Where each host keeps the fingerprint of the secrets it was set up with. */
export const FINGERPRINT_PATH = '/etc/airflow-ha/secrets.fingerprint';

/** Fact: the fingerprint line on a host, or undefined when the host has none. */
export const fingerprintFact: Fact<string | undefined> = {
  key: `secrets-fingerprint:${FINGERPRINT_PATH}`,
  cmd: sh`if [ -f ${FINGERPRINT_PATH} ]; then echo present; head -c 4096 ${FINGERPRINT_PATH}; else echo absent; fi`,
  parse(stdout) {
    const [first, ...rest] = stdout.split('\n');
    return first === 'present' ? rest.join('\n').trim() : undefined;
  },
};

/**
 * How a host's fingerprint compares with the operator's secrets: `previous` only in a rotation
 * (rotate-secret), for a host still holding the fingerprint of the set before it.
 */
export type FingerprintState = 'same' | 'absent' | 'different' | 'previous';

/**
 * Compares each host's fingerprint line (undefined: none) with `secrets`. A line is `same` when it
 * is the fingerprint of `secrets` over the names it lists (so a key added to the secrets file later
 * does not count as a difference), `different` otherwise (also when it names a secret this version
 * does not know, or is not a fingerprint line). One scrypt per distinct name set, not per host;
 * `current` (the fingerprint of `secrets` over every name, when the caller has it) saves one.
 */
export function compareFingerprints(
  secrets: ClusterSecrets,
  cluster: string,
  onHosts: ReadonlyMap<string, string | undefined>,
  current?: string,
): Map<string, FingerprintState> {
  const expected = new Map<string, string | undefined>();
  const currentNames = current === undefined ? undefined : fingerprintNames(current);
  if (current !== undefined && currentNames) expected.set(currentNames.join(','), current);
  const out = new Map<string, FingerprintState>();
  for (const [host, line] of onHosts) {
    if (line === undefined || line === '') {
      out.set(host, 'absent');
      continue;
    }
    const names = fingerprintNames(line);
    const key = names?.join(',') ?? '';
    if (!expected.has(key)) {
      let fp: string | undefined;
      try {
        fp = names ? secretsFingerprint(secrets, cluster, names) : undefined;
      } catch {
        fp = undefined; // names a secret this version does not know
      }
      expected.set(key, fp);
    }
    out.set(host, expected.get(key) === line.trim() ? 'same' : 'different');
  }
  return out;
}

/**
 * The ops that record `line` as a host's fingerprint: the folder (created 0755 when missing; its mode
 * is left alone otherwise, the base system manages it) and the file, root:root 0600, written
 * atomically.
 */
export function writeFingerprintOps(line: string): Op[] {
  return [
    exec(sh`[ -d /etc/airflow-ha ] || install -d -m 0755 -o root -g root /etc/airflow-ha`),
    { kind: 'put', path: FINGERPRINT_PATH, content: Buffer.from(`${line}\n`), mode: '0600', owner: 'root', group: 'root' },
  ];
}
