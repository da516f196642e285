/**
 * Rocky/RHEL hosts cannot be booted here, so their part of `bootstrap` is covered offline: for each
 * seed host, the commands a first run would execute on a fresh Rocky 9 host (every fact reading
 * "absent"), as one shell script per host. Every guard reads as failed too, so commands a first run
 * skips (e.g. a pending rolling restart) are also pinned. Golden files pin them; every script must
 * pass shellcheck.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fact } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { bootstrap } from '../../playbooks/bootstrap.js';
import { assertGolden, fixedOperator, fixedSecrets, seedInventory } from '../helpers/golden.js';
import { FreshHost, assertShellcheck, firstRunScripts } from '../helpers/scripts.js';

/**
 * Port records of a fresh Rocky 9 (`semanage port -l -n`) for the ports the stack uses: the types
 * and ports of selinux-policy's corenetwork.te.in (c9s branch).
 */
const ROCKY_PORTS = [
  'amqp_port_t                    tcp      15671-15672, 5671-5672',
  'commplex_main_port_t           tcp      5000',
  'epmd_port_t                    tcp      4369',
  'gatekeeper_port_t              tcp      1721, 7000',
  'http_cache_port_t              tcp      8080, 8118, 8123, 10001-10010',
  'http_port_t                    tcp      80, 81, 443, 488, 8008, 8009, 8443, 9000',
  'postgresql_port_t              tcp      5432, 9898',
  'rabbitmq_port_t                tcp      25672',
  'xserver_port_t                 tcp      6000-6020',
].join('\n');

/**
 * Facts of a fresh host: every fact command printed nothing and failed, except SELinux, which a
 * fresh Rocky 9 has enforcing with the policy's defaults (booleans off, the ports above labeled,
 * a directory airflow-ha creates under /usr/libexec labeled bin_t like its parent).
 */
class FreshRocky extends FreshHost {
  override get<T>(fact: Fact<T>): T {
    if (fact.key.startsWith('selinux:')) {
      const booleans = fact.key.split(':')[1]!.split(',').filter(Boolean).map((b) => `${b} --> off`);
      return fact.parse(['mode=Enforcing', ...booleans, '--ports', ROCKY_PORTS, ''].join('\n'), 0);
    }
    if (fact.key.startsWith('selinux-type:')) return fact.parse('system_u:object_r:bin_t:s0\n', 0);
    return super.get(fact);
  }
}

const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'fresh', container: false };

async function scripts(): Promise<Map<string, string>> {
  const inv = await seedInventory();
  // The VRRP interface is read from the host at run time; offline it is named.
  for (const h of inv.hosts) h.vars = { ...h.vars, interface: 'eth0' };
  return firstRunScripts(bootstrap, inv, rocky, fixedSecrets, 'airflow-ha bootstrap on a fresh Rocky/RHEL 9 host', fixedOperator, () => new FreshRocky());
}

test('golden: the first-run commands of every seed host on Rocky/RHEL 9', async () => {
  const all = await scripts();
  assert.equal(all.size, 13);
  for (const [host, text] of all) await assertGolden(`rhel-scripts/${host}.sh`, text);
  // What a Rocky host gets that a Debian one does not: dnf, and packages held by versionlock when pinned.
  const sql1 = all.get('sql1') ?? '';
  assert.match(sql1, /^\( dnf install -y -q /m);
  assert.doesNotMatch(sql1, /apt-get/);
  for (const [host, text] of all) {
    // firewalld, never the nftables table; the public zone is never touched.
    assert.match(text, /^# write \/etc\/firewalld\/zones\/airflow-ha\.xml /m, host);
    assert.match(text, /firewall-offline-cmd --system-config "\$d" --check-config/, host);
    assert.doesNotMatch(text, /nft |airflow-ha-firewall|--zone=public|setenforce|selinux=0|SELINUX=/i, host);
    // Nothing is upgraded: no update/upgrade anywhere.
    assert.doesNotMatch(text, /dnf (-\S+ )*(update|upgrade)|apt-get (-\S+ )*(upgrade|dist-upgrade)/, host);
  }
  // Upstream sources before the packages, each version pinned and held.
  assert.ok(sql1.indexOf('airflow-ha-pgdg.repo') < sql1.indexOf('dnf install -y -q postgresql15-server'));
  assert.match(sql1, /^\( dnf -qy module disable postgresql \)$/m);
  assert.match(sql1, /^\( dnf install -y -q 'etcd-3\.5\.17\*' \)$/m);
  assert.match(sql1, /^\( dnf versionlock add patroni patroni-etcd \)$/m);
  const mq1 = all.get('mq1') ?? '';
  assert.ok(mq1.indexOf('airflow-ha-rabbitmq.repo') < mq1.indexOf("dnf install -y -q 'erlang-"));
  assert.match(mq1, /^\( dnf versionlock add erlang rabbitmq-server \)$/m);
  assert.doesNotMatch(mq1, /semanage port/, 'the default RabbitMQ ports are labeled already');
  // SELinux stays enforcing: HAProxy's boolean, keepalived's check as an unconfined script.
  const lb = all.get('airflow') ?? '';
  assert.match(lb, /^\( setsebool -P haproxy_connect_any=on \)$/m);
  assert.ok(lb.indexOf('setsebool') < lb.indexOf('systemctl start haproxy'), 'the boolean is set before haproxy starts');
  assert.match(lb, /^# write \/usr\/libexec\/keepalived\/airflow-ha-chk_haproxy .*0755\)$/m);
  assert.match(lb, /^\( restorecon -R \/usr\/libexec\/keepalived \)$/m);
});

test('every generated Rocky/RHEL script passes shellcheck', async () => {
  for (const [host, text] of await scripts()) assertShellcheck(host, text);
});
