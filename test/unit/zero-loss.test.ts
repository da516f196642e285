/**
 * No acknowledged write lost on a failover: Patroni's synchronous mode and timings per inventory
 * (number of postgresql hosts, strict on/off), the task that brings a live cluster's DCS settings
 * in line (leader only, only what differs), the validate rules, and Celery's queue settings per
 * Airflow major (quorum queues and publisher confirms where Celery >= 5.5).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { CELERY_QUEUES, celeryConfigModule, celeryQueueSettings } from '../../src/components/celery.js';
import { airflowConfigVars, celeryConfigFile } from '../../src/components/airflow.js';
import { dcsConfigChanges, patroniDcs, patroniDcsSettings, renderPatroniConfig } from '../../src/components/patroni.js';
import { InputError } from '../../src/core/errors.js';
import { FactSet } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { renderTemplate } from '../../src/tasks/template.js';
import { fixedSecrets } from '../helpers/golden.js';

const FACTS: HostFacts = { osId: 'debian', osVersion: '12', family: 'debian', hostname: 'x', container: true };

/** An inventory of `n` postgresql hosts (the first one also etcd), with `ha` as cluster.postgresql.ha and Airflow `airflow`. */
function inventoryText(n: number, ha = '', airflow = '2.9.0', extraHosts = ''): string {
  const hosts = Array.from({ length: n }, (_, i) => `  - { name: db${i + 1}, address: 10.1.0.${11 + i}, roles: [postgresql${i === 0 ? ', etcd' : ''}] }\n`).join('');
  return `cluster:\n  name: c\n  network: 10.1.0.0/24\n  versions: { airflow: "${airflow}" }\n${ha ? `  postgresql:\n    ha: ${ha}\n` : ''}hosts:\n${hosts}${extraHosts}`;
}
const inventory = (n: number, ha = '', airflow = '2.9.0', extraHosts = ''): Inventory => parseInventory(inventoryText(n, ha, airflow, extraHosts), 'x.yaml').inventory;

test('synchronous mode: on by default from 3 postgresql hosts, off below; strict only when asked, and only with sync on', () => {
  const cases: Array<[number, string, boolean, boolean]> = [
    [1, '', false, false],
    [2, '', false, false],
    [3, '', true, false],
    [5, '', true, false],
    [3, '{ strict: true }', true, true],
    [2, '{ strict: true }', false, false],
    [3, '{ synchronous: off, strict: true }', false, false],
    [2, '{ synchronous: on }', true, false],
  ];
  for (const [n, ha, sync, strict] of cases) {
    const d = patroniDcs(inventory(n, ha));
    assert.equal(d.synchronous_mode, sync, `${n} hosts ${ha}`);
    assert.equal(d.synchronous_mode_strict, strict, `${n} hosts ${ha}`);
    assert.equal(d.synchronous_node_count, 1);
  }
});

test('patroni config: bootstrap.dcs carries the synchronous settings and timings that keep loop_wait + 2 * retry_timeout <= ttl', () => {
  const y = parse(renderPatroniConfig(inventory(3, '{ strict: true }'), 'db2', fixedSecrets)) as { bootstrap: { dcs: Record<string, unknown> } };
  const dcs = y.bootstrap.dcs;
  assert.deepEqual(
    { ttl: dcs['ttl'], loop_wait: dcs['loop_wait'], retry_timeout: dcs['retry_timeout'], synchronous_mode: dcs['synchronous_mode'], synchronous_mode_strict: dcs['synchronous_mode_strict'], synchronous_node_count: dcs['synchronous_node_count'] },
    { ttl: 12, loop_wait: 2, retry_timeout: 5, synchronous_mode: true, synchronous_mode_strict: true, synchronous_node_count: 1 },
  );
  assert.ok(Number(dcs['loop_wait']) + 2 * Number(dcs['retry_timeout']) <= Number(dcs['ttl']));
  const two = parse(renderPatroniConfig(inventory(2), 'db1', fixedSecrets)) as { bootstrap: { dcs: Record<string, unknown> } };
  assert.equal(two.bootstrap.dcs['synchronous_mode'], false);
});

test('validate: loopWait + 2 * retryTimeout > ttl is an error naming the rule and the line; strict sync on 2 hosts warns', () => {
  assert.throws(
    () => parseInventory(inventoryText(3, '{ ttl: 10, loopWait: 2, retryTimeout: 5 }'), 'x.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof InputError);
      const d = e.diagnostics.find((x) => x.rule === 'postgresql:patroni-timings');
      assert.ok(d, e.diagnostics.map((x) => x.rule).join(','));
      assert.equal(d.pos.line, 6);
      assert.match(d.message, /loopWait 2 \+ 2 \* retryTimeout 5 = 12 s exceeds ttl 10 s/);
      return true;
    },
  );
  const w = parseInventory(inventoryText(2, '{ synchronous: on, strict: true }'), 'x.yaml').warnings.map((x) => x.rule);
  assert.ok(w.includes('postgresql:strict-sync'), w.join(','));
  assert.ok(!parseInventory(inventoryText(3, '{ strict: true }'), 'x.yaml').warnings.some((x) => x.rule === 'postgresql:strict-sync'));
});

/** Plans the DCS settings task on facts `{leader, config}` as the node's REST API would print them. */
function planDcs(inv: Inventory, stdout: string, code = 0) {
  const task = patroniDcsSettings(inv, inv.hosts[0]!, 'debian');
  const f = task.facts(FACTS)[0]!;
  return task.plan(new FactSet(new Map([[f.key, { stdout, code }]])), FACTS);
}

test('DCS settings on a live cluster: the leader changes only the keys that differ; replicas, silent APIs and matching configs change nothing', () => {
  const inv = inventory(3);
  const old = { ttl: 30, loop_wait: 10, retry_timeout: 10, maximum_lag_on_failover: 1048576, postgresql: { use_slots: true } };
  const p = planDcs(inv, JSON.stringify({ leader: true, config: old }));
  assert.equal(p.changed, true);
  assert.deepEqual(p.changes, ['patroni DCS ttl: 30 -> 12', 'patroni DCS loop_wait: 10 -> 2', 'patroni DCS retry_timeout: 10 -> 5', 'patroni DCS synchronous_mode: false -> true']);
  const cmd = p.ops[0]?.kind === 'exec' ? p.ops[0].cmd.render() : '';
  assert.equal(cmd, 'patronictl -c /etc/patroni/config.yml edit-config --force --quiet -s ttl=12 -s loop_wait=2 -s retry_timeout=5 -s synchronous_mode=true c');
  assert.equal(planDcs(inv, JSON.stringify({ leader: false, config: old })).changed, false, 'a replica leaves it to the leader');
  assert.equal(planDcs(inv, JSON.stringify({ leader: true, config: null })).changed, false, 'no config read: nothing to compare');
  assert.equal(planDcs(inv, '', 1).changed, false);
  const now = { ...old, ...patroniDcs(inv) };
  assert.equal(planDcs(inv, JSON.stringify({ leader: true, config: now })).changed, false, 'a second run changes nothing');
  assert.deepEqual(dcsConfigChanges({}, { ...patroniDcs(inv), synchronous_mode: false, ttl: 30, loop_wait: 10, retry_timeout: 10 }), [], 'an absent key is Patroni\'s default');
});

test('Celery queue settings per Airflow major: 3.x quorum queues with publisher confirms, 2.x classic queues and a node-loss warning', () => {
  assert.equal(celeryQueueSettings('2.9.0'), CELERY_QUEUES[2]);
  assert.equal(celeryQueueSettings('3.0.2'), CELERY_QUEUES[3]);
  assert.throws(() => celeryQueueSettings('4.0.0'), /no Celery queue settings for major 4/);
  assert.equal(CELERY_QUEUES[2].quorumQueues, false);
  assert.equal(celeryConfigModule(CELERY_QUEUES[2]), undefined, '2.x keeps the provider defaults');
  assert.deepEqual(CELERY_QUEUES[3].celeryConfig, { task_default_queue_type: 'quorum', worker_detect_quorum_queues: true, broker_transport_options: { confirm_publish: true } });
  const py = celeryConfigModule(CELERY_QUEUES[3]) ?? '';
  assert.match(py, /^from airflow\.providers\.celery\.executors\.default_celery import DEFAULT_CELERY_CONFIG$/m);
  assert.match(py, /^ {4}"task_default_queue_type": "quorum",$/m);
  assert.match(py, /^ {4}"worker_detect_quorum_queues": True,$/m);
  assert.match(py, /^ {4}"broker_transport_options": \{\*\*DEFAULT_CELERY_CONFIG\.get\("broker_transport_options", \{\}\), \*\*\{"confirm_publish": True\}\},$/m);

  const workers = '  - { name: lb1, address: 10.1.0.20, roles: [haproxy] }\n  - { name: mq1, address: 10.1.0.21, roles: [rabbitmq] }\n  - { name: w1, address: 10.1.0.31, roles: [worker], queues: [default] }\n';
  const two = parseInventory(inventoryText(3, '', '2.10.5', workers), 'x.yaml');
  const loss = two.warnings.find((w) => w.rule === 'broker:node-loss');
  assert.ok(loss);
  assert.match(loss.message, /stranded/);
  assert.equal(loss.pos.line, 4);
  assert.ok(!parseInventory(inventoryText(3, '', '2.10.5'), 'x.yaml').warnings.some((w) => w.rule === 'broker:node-loss'), 'no worker, no warning');

  // airflow.cfg: 2.x renders no celery_config_options (unchanged); a 3.x inventory's variables name the module.
  const inv2 = two.inventory;
  assert.equal(airflowConfigVars(inv2, fixedSecrets)['celery_config_options'], null);
  assert.equal(celeryConfigFile(inv2), undefined);
  const inv3: Inventory = { ...inv2, cluster: { ...inv2.cluster, versions: { ...inv2.cluster.versions, airflow: '3.0.2' } } };
  const vars3 = airflowConfigVars(inv3, fixedSecrets);
  assert.equal(vars3['celery_config_options'], 'airflow_ha_celery.CELERY_CONFIG');
  assert.deepEqual(celeryConfigFile(inv3)?.path, '/opt/airflow/config/airflow_ha_celery.py');
  assert.match(renderTemplate('airflow/airflow.cfg.njk', vars3), /^celery_config_options = airflow_ha_celery\.CELERY_CONFIG$/m);
  assert.doesNotMatch(renderTemplate('airflow/airflow.cfg.njk', airflowConfigVars(inv2, fixedSecrets)), /celery_config_options/);
});
