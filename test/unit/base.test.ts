/** The base step's rendered files for the seed layout: golden files, and the firewall accepted by `nft -c`. */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firewallPorts } from '../../src/components/base.js';
import { renderFiles } from '../../src/cli/render.js';
import { base } from '../../playbooks/base.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { tempDir } from '../helpers/local.js';

test('firewall ports per role: the seed sql1 opens etcd and PostgreSQL ports, never sshd', async () => {
  const inv = await seedInventory();
  const sql1 = inv.hosts.find((h) => h.name === 'sql1');
  assert.ok(sql1);
  assert.deepEqual(firewallPorts(sql1, inv).map((p) => p.range), ['5432', '8008', '2379', '2380']);
  const mq1 = inv.hosts.find((h) => h.name === 'mq1');
  assert.ok(mq1);
  assert.ok(firewallPorts(mq1, inv).some((p) => p.range === '6000-6500'));
});

test('golden: base files of seed hosts sql1 and mq1 (rhel), and nft accepts the firewall', async () => {
  const inv = await seedInventory();
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    for (const f of renderFiles(base, inv, fixedSecrets, 'rhel').filter((x) => x.host === 'sql1' || x.host === 'mq1')) {
      await assertGolden(`base/${f.host}${f.path}`, f.content);
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
