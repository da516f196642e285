/**
 * The roles each playbook needs come from its steps' `needs`; playbooks/catalog.ts keeps a copy
 * for `validate`, which does not load the playbooks. These tests keep the two equal and check
 * what the derivation gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { playbookRoles } from '../../playbooks/catalog.js';
import { playbooks } from '../../playbooks/index.js';
import { roleNeeds, selectHosts, type Step } from '../../src/run/playbook.js';
import { seedInventory } from '../helpers/golden.js';

test("the catalog's roles of every playbook are its steps' needs", () => {
  assert.deepEqual(Object.keys(playbookRoles).sort(), Object.keys(playbooks).sort());
  for (const [name, pb] of Object.entries(playbooks)) {
    assert.deepEqual(playbookRoles[name as keyof typeof playbookRoles], roleNeeds(pb.steps), name);
    assert.deepEqual(pb.requiredRoles, roleNeeds(pb.steps), name);
  }
});

test('bootstrap needs a scheduler host for the migrations and a worker to consume tasks', () => {
  const needs = roleNeeds(playbooks.bootstrap.steps);
  assert.deepEqual(
    needs.map((n) => [n.role, n.step]),
    [
      ['etcd', 'etcd'],
      ['postgresql', 'patroni leader'],
      ['haproxy', 'haproxy'],
      ['rabbitmq', 'rabbitmq nodes'],
      ['scheduler', 'airflow db migrate + admin user'],
      ['worker', 'airflow workers'],
    ],
  );
  // Optional parts (DAG storage on NFS, FTP, the SSH target) are skipped without hosts: not needed.
  for (const role of ['nfs', 'ftp', 'target', 'webserver', 'flower', 'triggerer', 'dag_processor']) assert.ok(!needs.some((n) => n.role === role), role);
});

test('roleNeeds names each role once, from the first step that needs it', () => {
  const step = (name: string, needs: Step['needs']): Step => ({ name, hosts: { all: true }, tasks: () => [], ...(needs ? { needs } : {}) });
  const got = roleNeeds([step('a', [{ role: 'etcd', why: 'x' }]), step('b', undefined), step('c', [{ role: 'etcd', why: 'y' }, { role: 'worker', why: 'z' }])]);
  assert.deepEqual(got, [
    { role: 'etcd', step: 'a', why: 'x' },
    { role: 'worker', step: 'c', why: 'z' },
  ]);
});

test('apply --playbook haproxy touches the haproxy hosts only; bootstrap has one TLS step, on every host', async () => {
  const inv = await seedInventory();
  const touched = new Set(playbooks.haproxy.steps.flatMap((s) => selectHosts(inv, s.hosts).map((h) => h.name)));
  assert.deepEqual([...touched].sort(), inv.hosts.filter((h) => h.roles.includes('haproxy')).map((h) => h.name).sort());
  const tls = playbooks.bootstrap.steps.filter((s) => s.name === 'tls files');
  assert.equal(tls.length, 1);
  assert.equal(selectHosts(inv, tls[0]!.hosts).length, inv.hosts.length);
});
