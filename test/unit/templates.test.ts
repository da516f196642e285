/**
 * Templates: golden files (set UPDATE_GOLDEN=1 to rewrite them after an intended change), strict
 * undefined handling, no HTML escaping, secrets only through `reveal`, and the rendered haproxy.cfg
 * accepted by the real `haproxy -c`.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Secret } from '../../src/core/secret.js';
import { renderFiles } from '../../src/cli/render.js';
import { renderTemplate } from '../../src/tasks/template.js';
import { hostsBlock } from '../../src/components/base.js';
import { demo } from '../../playbooks/demo.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { tempDir } from '../helpers/local.js';

test('golden: the demo playbook files of the seed inventory, for two hosts', async () => {
  const inv = await seedInventory();
  const files = renderFiles(demo, inv, fixedSecrets, 'debian').filter((f) => f.host === 'airflow' || f.host === 'sql1');
  assert.deepEqual(
    [...new Set(files.map((f) => f.path))].sort(),
    ['/etc/haproxy/haproxy.cfg', '/etc/hostname', '/etc/hosts', '/etc/sysctl.d/60-airflow-ha-demo.conf'],
  );
  for (const f of files) await assertGolden(`demo/${f.host}${f.path}`, f.content.toString('utf8'));
});

test('golden: the /etc/hosts block lists every seed host and both VIPs', async () => {
  await assertGolden('base/hosts-block.txt', `${hostsBlock(await seedInventory())}\n`);
});

test('an undefined variable is an error naming the template, never an empty string', () => {
  assert.throws(
    () => renderTemplate('demo/haproxy.cfg.njk', { cluster: { name: 'x' }, host: { address: '10.0.0.1', name: 'h' }, ports: { haproxyStats: 7000 }, maxconn: 10 }),
    /template demo\/haproxy\.cfg\.njk: .*timeout_client/s,
  );
});

test('nothing is HTML-escaped; a bare Secret renders as *** and `reveal` gives the value', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const vars = {
      cluster: { name: 'a<b>&"c"' },
      host: { address: '10.0.0.1', name: 'h' },
      ports: { haproxyStats: 7000 },
      maxconn: 10,
      timeout_client: '30m',
      stats_password: new Secret('p&ss<word>'),
    };
    const out = renderTemplate('demo/haproxy.cfg.njk', vars);
    assert.match(out, /\(a<b>&"c"\)/);
    assert.match(out, /stats auth admin:p&ss<word>/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the rendered haproxy.cfg passes `haproxy -c`', async () => {
  const inv = await seedInventory();
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    for (const f of renderFiles(demo, inv, fixedSecrets, 'debian').filter((x) => x.path === '/etc/haproxy/haproxy.cfg').slice(0, 3)) {
      const p = path.join(dir, `${f.host}.cfg`);
      await writeFile(p, f.content);
      // -c only parses and checks; binding to the seed addresses is not attempted.
      execFileSync('haproxy', ['-c', '-q', '-f', p], { stdio: 'pipe' });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
