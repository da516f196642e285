/**
 * `render`: every playbook states each file of a host once, and the command's count is the number
 * of files it wrote.
 */
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderFiles } from '../../src/cli/render.js';
import { playbooks } from '../../playbooks/index.js';
import { fixedOperator, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { runMain } from '../helpers/cli.js';
import { ROOT } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';

test('no playbook renders a path twice for one host; only RHEL\'s PGDG repository is stated by two steps (seed inventory)', async () => {
  const seed = await seedInventory();
  // The seed has no monitoring host: the monitoring playbook renders on the seed with VM1 (airflow) monitoring, as seed 001 allows.
  const monitoredSeed = { ...seed, hosts: seed.hosts.map((h) => (h.name === 'airflow' ? { ...h, roles: [...h.roles, 'monitoring' as const] } : h)) };
  for (const [name, pb] of Object.entries(playbooks)) {
    if (name === 'deploy-dags') continue; // needs a DAG folder; its files are the release of dags
    const inv = name === 'monitoring' ? monitoredSeed : seed;
    // Monitoring is Debian-only: a monitored RHEL host is refused (test/unit/monitoring.test.ts).
    for (const family of name === 'monitoring' ? (['debian'] as const) : (['debian', 'rhel'] as const)) {
      const files = renderFiles(pb, inv, fixedSecrets, family, fixedOperator);
      assert.ok(files.length > 0, `${name} renders files`);
      const keys = files.map((f) => `${f.host}:${f.path}`);
      assert.deepEqual(keys.filter((k, i) => keys.indexOf(k) !== i), [], `${name} (${family}) renders these paths more than once`);
      // The etcd step on RHEL installs etcd from PGDG; Patroni states the same repository for itself.
      const restated = files.filter((f) => f.steps.length > 1).map((f) => `${f.host}:${f.path} by ${f.steps.join(', ')}`);
      const expected =
        family === 'rhel' && (name === 'bootstrap' || name === 'etcd-patroni')
          ? ['sql1', 'sql2', 'sql3'].map((h) => `${h}:/etc/yum.repos.d/airflow-ha-pgdg.repo by etcd, patroni ${h === 'sql1' ? 'leader' : 'replicas'}`)
          : [];
      assert.deepEqual(restated, expected, `${name} (${family}): files stated by more than one step`);
    }
  }
});

test('two steps stating different content for one path is an error', async () => {
  const inv = await seedInventory();
  const one = (content: string) => ({ name: `writes ${content}`, hosts: { names: ['sql1'] }, tasks: () => [{ name: 'f', files: () => [{ path: '/etc/x', content: Buffer.from(content), mode: '0644' }] }] });
  const pb = { name: 'conflict', description: '', requiredRoles: [], steps: [one('a'), one('b')] } as never;
  assert.throws(() => renderFiles(pb, inv, fixedSecrets, 'debian'), /sql1:\/etc\/x is stated differently by steps "writes a" and "writes b"/);
});

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

test('render reports the number of files it wrote', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    await copyFile(path.join(ROOT, 'inventory', 'seed-ha.yaml'), path.join(dir, 'seed-ha.yaml'));
    const r = await runMain(['render', '-i', 'seed-ha.yaml', '--out', 'out'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const written = await filesUnder(path.join(dir, 'out'));
    const m = /^rendered (\d+) file\(s\) for (\d+) host\(s\)/.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.ok(written.length > 100, `the seed inventory's bootstrap writes over 100 files, got ${written.length}`);
    assert.equal(Number(m[1]), written.length);
    assert.equal(Number(m[2]), (await readdir(path.join(dir, 'out'))).length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
