/**
 * Rocky/RHEL hosts cannot be booted here, so their part of `bootstrap` is covered offline: for each
 * seed host, the commands a first run would execute on a fresh Rocky 9 host (every fact reading
 * "absent"), as one shell script per host. Golden files pin them; every script must pass shellcheck.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HostFacts } from '../../src/facts/host.js';
import { bootstrap } from '../../playbooks/bootstrap.js';
import { assertGolden, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { assertShellcheck, firstRunScripts } from '../helpers/scripts.js';

const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'fresh', container: false };

async function scripts(): Promise<Map<string, string>> {
  const inv = await seedInventory();
  // The VRRP interface is read from the host at run time; offline it is named.
  for (const h of inv.hosts) h.vars = { ...h.vars, interface: 'eth0' };
  return firstRunScripts(bootstrap, inv, rocky, fixedSecrets, 'airflow-ha bootstrap on a fresh Rocky/RHEL 9 host');
}

test('golden: the first-run commands of every seed host on Rocky/RHEL 9', async () => {
  const all = await scripts();
  assert.equal(all.size, 13);
  for (const [host, text] of all) await assertGolden(`rhel-scripts/${host}.sh`, text);
  // What a Rocky host gets that a Debian one does not: dnf, and packages held by versionlock when pinned.
  assert.match(all.get('sql1') ?? '', /^\( dnf install -y -q /m);
  assert.doesNotMatch(all.get('sql1') ?? '', /apt-get/);
});

test('every generated Rocky/RHEL script passes shellcheck', async () => {
  for (const [host, text] of await scripts()) assertShellcheck(host, text);
});
