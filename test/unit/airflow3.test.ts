/**
 * The Airflow 3 layout on the seed inventory with `versions.airflow` set to the newest 3.x:
 * airflow.cfg (golden, identical on every Airflow host, with the shared JWT secret and the
 * Execution API through the VIP), the units (api-server instead of the webserver), HAProxy's UI
 * check on the 3.x health path, the pip requirement, and the firewall: no replica port to the
 * worker-only host, the leader port still open to it for Celery's result backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { airflowLayout, airflowServices, executionApiUrl, pipInstallCmd, renderAirflowConfig } from '../../src/components/airflow.js';
import { firewallRules } from '../../src/components/base.js';
import { haproxyConfig } from '../../src/components/haproxy.js';
import { renderFiles } from '../../src/cli/render.js';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/rules.js';
import { clientSources, ROLE_PORTS } from '../../src/inventory/ports.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { airflow } from '../../playbooks/airflow.js';
import { assertAirflowGoldens, fixedSecrets, seedInventory, seedInventoryOnAirflow } from '../helpers/golden.js';

const byName = (inv: Inventory, name: string) => inv.hosts.find((h) => h.name === name)!;

test(`golden: airflow.cfg and the units of the seed on Airflow ${AIRFLOW_3_NEWEST}`, async () => {
  const inv = await seedInventoryOnAirflow();
  assert.equal(airflowLayout(inv.cluster.versions.airflow).major, 3);
  const units = await assertAirflowGoldens(inv, 'airflow3');
  // The api-server on the two webserver hosts where Airflow 2 runs the webserver; the rest as on 2.x.
  assert.deepEqual(units, [
    'airflow/airflow-scheduler.service',
    'airflow/airflow-triggerer.service',
    'airflow/airflow-api-server.service',
    'airflow/airflow-flower.service',
    'scheduler2/airflow-scheduler.service',
    'scheduler2/airflow-triggerer.service',
    'haproxy2/airflow-api-server.service',
    'ftp/airflow-dag-processor.service',
    'nfs2/airflow-dag-processor.service',
    'worker1/airflow-worker.service',
  ]);
  const api = airflowServices(inv, byName(inv, 'haproxy2'))[0]!;
  assert.deepEqual(api.argv, ['/opt/airflow/venv/bin/airflow', 'api-server', '--pid', '/opt/airflow/state/webserver.pid']);
  // Still one active DAG processor under the etcd lock (several on one bundle are no HA setup on 3.x).
  assert.match(airflowServices(inv, byName(inv, 'ftp'))[0]!.argv.join(' '), /^\/usr\/bin\/etcdctl --endpoints=\S+ lock --ttl=15 \/airflow-ha\/airflow-seed\/dag-processor \/opt\/airflow\/venv\/bin\/airflow dag-processor$/);
});

test('render on Airflow 3: one airflow.cfg per Airflow host, identical, with the shared JWT secret, the Execution API through the VIP, the FAB auth manager and the provider executor', async () => {
  const inv = await seedInventoryOnAirflow();
  const files = renderFiles(airflow, inv, fixedSecrets, 'debian').filter((f) => f.path === '/opt/airflow/airflow.cfg');
  assert.deepEqual(files.map((f) => f.host), ['airflow', 'scheduler2', 'haproxy2', 'ftp', 'nfs2', 'worker1']);
  const cfg = renderAirflowConfig(inv, fixedSecrets);
  assert.ok(files.every((f) => f.mode === '0640' && f.content.toString() === cfg), 'identical everywhere, 0640');
  const lines = cfg.split('\n');
  for (const want of [
    'executor = airflow.providers.celery.executors.celery_executor.CeleryExecutor',
    'auth_manager = airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager',
    'execution_api_server_url = http://192.168.83.210/execution/',
    'jwt_secret = fixed-airflowJwtSecret-value',
    'secret_key = fixed-airflowSecretKey-value',
    'port = 8080',
    'base_url = http://airflow-vip',
    'celery_config_options = airflow_ha_celery.CELERY_CONFIG',
  ]) {
    assert.ok(lines.includes(want), `missing: ${want}`);
  }
  // Each key in its Airflow 3 section; nothing of the 2.x layout left.
  const section = (key: string) => {
    const i = lines.findIndex((l) => l.startsWith(`${key} = `));
    return lines.slice(0, i).reverse().find((l) => l.startsWith('['));
  };
  assert.equal(section('jwt_secret'), '[api_auth]');
  assert.equal(section('secret_key'), '[api]');
  assert.equal(section('execution_api_server_url'), '[core]');
  assert.equal(section('auth_manager'), '[core]');
  assert.doesNotMatch(cfg, /^\[webserver\]|^standalone_dag_processor|^web_server_port/m);
  assert.equal(executionApiUrl(inv), 'http://192.168.83.210/execution/');
  // Another frontend port shows in the URL.
  const on8080 = { ...inv, cluster: { ...inv.cluster, ports: { ...inv.cluster.ports, webserverFrontend: 8443 } } };
  assert.equal(executionApiUrl(on8080), 'http://192.168.83.210:8443/execution/');
  // Airflow 2 keeps its layout and file.
  const two = renderAirflowConfig(await seedInventory(), fixedSecrets);
  assert.match(two, /^\[webserver\]$/m);
  assert.doesNotMatch(two, /jwt_secret|execution_api_server_url|auth_manager/);
});

test('Airflow 3 firewall: the worker-only host loses the replica port, keeps the leader port (Celery result backend); 2.x unchanged', async () => {
  const three = await seedInventoryOnAirflow();
  const two = await seedInventory();
  const spec = (key: string) => ROLE_PORTS.haproxy.find((s) => s.setting === key)!;
  const worker = byName(three, 'worker1').address;
  const scheduler = byName(three, 'scheduler2').address;
  const dagProcessor = byName(three, 'nfs2').address;
  assert.ok(!clientSources(three, spec('haproxyReplica').clients).includes(worker), 'no replica port to a worker-only host on 3.x');
  for (const a of [scheduler, dagProcessor]) assert.ok(clientSources(three, spec('haproxyReplica').clients).includes(a), a);
  assert.ok(clientSources(three, spec('haproxyLeader').clients).includes(worker), 'the worker writes Celery task states');
  for (const key of ['haproxyLeader', 'haproxyReplica']) assert.ok(clientSources(two, spec(key).clients).includes(worker), `2.x: ${key}`);
  // As the HAProxy hosts' firewalls render it.
  const rule = (inv: Inventory, label: string) => firewallRules(byName(inv, 'haproxy2'), inv).find((r) => r.label === `haproxy: ${label}`)!;
  assert.ok(!rule(three, 'haproxyReplica').sources.includes(worker));
  assert.ok(rule(two, 'haproxyReplica').sources.includes(worker));
  assert.deepEqual(rule(three, 'haproxyLeader').sources, rule(two, 'haproxyLeader').sources);
});

test('Airflow 3: HAProxy checks the api-servers on /api/v2/monitor/health; pip installs the FAB and Celery providers under the constraints of the version', async () => {
  const inv = await seedInventoryOnAirflow();
  const cfg = haproxyConfig(inv, byName(inv, 'haproxy2'), fixedSecrets, 'debian');
  assert.match(cfg, /^ {4}option httpchk GET \/api\/v2\/monitor\/health$/m);
  assert.doesNotMatch(cfg, /httpchk GET \/health$/m);
  assert.match(haproxyConfig(await seedInventory(), byName(await seedInventory(), 'haproxy2'), fixedSecrets, 'debian'), /^ {4}option httpchk GET \/health$/m);
  assert.equal(
    pipInstallCmd(inv).render(),
    `/opt/airflow/venv-${AIRFLOW_3_NEWEST}/bin/pip install --disable-pip-version-check --no-input --constraint https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_3_NEWEST}/constraints-3.11.txt 'apache-airflow[celery,fab,postgres]==${AIRFLOW_3_NEWEST}'`,
  );
});
