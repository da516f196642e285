/**
 * `airflow-ha endpoints`: the places to reach the lab cluster through its VIP, each login's user and
 * secret name, and never a password.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { clusterEndpoints, endpointsText } from '../../src/cli/endpoints.js';
import { loadInventory } from '../../src/inventory/load.js';
import { ROOT } from '../helpers/lab.js';

test('endpoints of the lab inventory: UI, Flower and HAProxy stats through the VIP, the secrets file, no password', async () => {
  const loaded = await loadInventory(path.join(ROOT, 'inventory', 'lab.yaml'));
  const byName = new Map(clusterEndpoints(loaded).map((e) => [e.name, e]));
  assert.deepEqual(byName.get('Airflow UI'), { name: 'Airflow UI', url: 'http://10.222.83.210/', user: 'admin', secret: 'airflowAdmin' });
  assert.equal(byName.get('Flower')?.url, 'http://10.222.83.210:5556/');
  assert.equal(byName.get('HAProxy stats')?.url, 'http://10.222.83.210:7000/');
  assert.equal(byName.get('PostgreSQL primary (read-write)')?.url, '10.222.83.210:5000');
  assert.equal(byName.get('RabbitMQ management')?.url, 'http://10.222.83.135:15672/');
  const text = endpointsText(loaded);
  assert.match(text, /^Airflow UI {2,}http:\/\/10\.222\.83\.210\/ {2,}login admin, password: secret airflowAdmin$/m);
  // The lab's bridge is an operator machine: the firewall lets it reach every endpoint, and endpoints says so.
  assert.match(text, /^firewall: the UI answers 10\.222\.83\.0\/24; the other endpoints answer only 10\.222\.83\.1 \(cluster\.firewall\.operators, lab\.address\)$/m);
  assert.match(text, new RegExp(`\\npasswords: ${path.join(ROOT, 'inventory', 'lab.state', 'secrets.yaml').replace(/[.]/g, '\\.')} \\(mode 0600; airflow-ha never prints them\\)\\n$`));
});

test('endpoints without an operator machine: the firewall note says only the UI answers, and how to open the rest', async () => {
  const loaded = await loadInventory(path.join(ROOT, 'inventory', 'seed-ha.yaml'));
  assert.match(endpointsText(loaded), /^firewall: the UI answers 192\.168\.83\.0\/24; the other endpoints answer no operator machine until its address is in cluster\.firewall\.operators$/m);
});
