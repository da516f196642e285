/**
 * Shared by the golden-file tests: the seed inventory, fixed secrets (so rendered files are
 * stable), and the golden comparison itself (UPDATE_GOLDEN=1 rewrites the files).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import assert from 'node:assert/strict';
import { airflowServices, renderAirflowConfig, renderAirflowUnit } from '../../src/components/airflow.js';
import { Secret } from '../../src/core/secret.js';
import { parseInventory } from '../../src/inventory/load.js';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/rules.js';
import type { Host, Inventory } from '../../src/inventory/schema.js';
import type { OperatorInputs } from '../../src/run/playbook.js';
import type { ClusterSecrets } from '../../src/inventory/secrets.js';
import { ROOT } from './lab.js';

export const GOLDEN_DIR = path.join(ROOT, 'test', 'golden');

/** Every secret as `fixed-<name>-value`: deterministic, and recognisable in golden files. */
export const fixedSecrets: ClusterSecrets = new Proxy({} as ClusterSecrets, {
  get: (_t, key) => new Secret(`fixed-${String(key)}-value`),
});

/** inventory/seed-ha.yaml, parsed (offline). */
export async function seedInventory(): Promise<Inventory> {
  const file = path.join(ROOT, 'inventory', 'seed-ha.yaml');
  return parseInventory(await readFile(file, 'utf8'), file).inventory;
}

/**
 * inventory/seed-ha.yaml with `versions.airflow` set to `version` (default the newest Airflow 3),
 * parsed like the file (so the inventory rules judge the modified copy). Throws when the seed no
 * longer pins `airflow: "2.9.0"` (this copy would then silently be the seed itself).
 */
export async function seedInventoryOnAirflow(version = AIRFLOW_3_NEWEST): Promise<Inventory> {
  const file = path.join(ROOT, 'inventory', 'seed-ha.yaml');
  const text = await readFile(file, 'utf8');
  const pin = 'airflow: "2.9.0"';
  if (!text.includes(pin)) throw new Error(`${file} no longer has ${pin}`);
  return parseInventory(text.replace(pin, `airflow: "${version}"`), file).inventory;
}

/** Asserts `actual` equals test/golden/NAME; with UPDATE_GOLDEN=1 writes it first. */
export async function assertGolden(name: string, actual: string | Buffer): Promise<void> {
  const file = path.join(GOLDEN_DIR, name);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, actual);
  }
  assert.equal(actual.toString(), await readFile(file, 'utf8'), `golden ${name} (UPDATE_GOLDEN=1 rewrites it)`);
}

/** A fixed key pair and host key: recognisable in golden files, never a real key. */
export const FIXED_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZpeGVkLXRlc3QtaG9zdC1rZXktb2YtY2FyZDEtLS0t';
/** Operator inputs of offline renders: the fixed target key pair, card1's fixed host key, no DAG folder. */
export const fixedOperator: OperatorInputs = {
  targetKey: {
    privateKey: new Secret('-----BEGIN OPENSSH PRIVATE KEY-----\nfixed-test-private-key\n-----END OPENSSH PRIVATE KEY-----\n'),
    publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZpeGVkLXRlc3Qtd29ya2VyLWtleS0tLS0tLS0tLS0t airflow-ha test workers',
  },
  hostKeys: (h: Host) => (h.name === 'card1' ? [FIXED_HOST_KEY] : []),
};


/**
 * Asserts airflow.cfg and every Airflow unit of `inv` against the goldens under test/golden/DIR/
 * (`DIR/airflow.cfg`, `DIR/<host>/<unit>`); returns the `<host>/<unit>` names in inventory order.
 */
export async function assertAirflowGoldens(inv: Inventory, dir: string): Promise<string[]> {
  await assertGolden(`${dir}/airflow.cfg`, renderAirflowConfig(inv, fixedSecrets));
  const units: string[] = [];
  for (const h of inv.hosts) {
    for (const svc of airflowServices(inv, h)) {
      units.push(`${h.name}/${svc.unit}`);
      await assertGolden(`${dir}/${h.name}/${svc.unit}`, renderAirflowUnit(inv, svc));
    }
  }
  return units;
}
