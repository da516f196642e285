/** The base step's rendered files for the seed layout: golden files, and the firewall accepted by `nft -c`. */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Secret } from '../../src/core/secret.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { ClusterSecrets } from '../../src/inventory/secrets.js';
import { firewallPorts } from '../../src/components/base.js';
import { renderFiles } from '../../src/cli/render.js';
import { base } from '../../playbooks/base.js';
import { ROOT } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';

const secrets = new Proxy({} as ClusterSecrets, { get: (_t, k) => new Secret(`fixed-${String(k)}`) });
const update = process.env['UPDATE_GOLDEN'] === '1';

async function seed() {
  const file = path.join(ROOT, 'inventory', 'seed-ha.yaml');
  return parseInventory(await readFile(file, 'utf8'), file).inventory;
}

test('firewall ports per role: the seed sql1 opens etcd and PostgreSQL ports, never sshd', async () => {
  const inv = await seed();
  const sql1 = inv.hosts.find((h) => h.name === 'sql1');
  assert.ok(sql1);
  assert.deepEqual(firewallPorts(sql1, inv).map((p) => p.range), ['5432', '8008', '2379', '2380']);
  const mq1 = inv.hosts.find((h) => h.name === 'mq1');
  assert.ok(mq1);
  assert.ok(firewallPorts(mq1, inv).some((p) => p.range === '6000-6500'));
});

test('golden: base files of seed hosts sql1 and mq1 (rhel), and nft accepts the firewall', async () => {
  const inv = await seed();
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    for (const f of renderFiles(base, inv, secrets, 'rhel').filter((x) => x.host === 'sql1' || x.host === 'mq1')) {
      const golden = path.join(ROOT, 'test', 'golden', 'base', f.host, f.path);
      if (update) {
        await mkdir(path.dirname(golden), { recursive: true });
        await writeFile(golden, f.content);
      }
      assert.equal(f.content.toString('utf8'), await readFile(golden, 'utf8'), `golden ${f.host}${f.path}`);
      if (f.path.endsWith('.nft')) {
        const p = path.join(dir, `${f.host}.nft`);
        await writeFile(p, f.content);
        execFileSync('nft', ['-c', '-f', p], { stdio: 'pipe' });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
