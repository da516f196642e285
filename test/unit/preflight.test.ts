/**
 * The preflight rules (src/preflight/rules.ts) on faked facts: each rule's message and fix, the
 * no-finding cases (a re-run on a live cluster is never refused), and the fact parsers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PreflightError } from '../../src/core/errors.js';
import { Inventory, type InventoryInput, type Role } from '../../src/inventory/schema.js';
import { capacityFact, etcdSchemeFact, installedAirflowFact, listenersFact, nfsSupportFact, packageOffersFact, pythonsFact, type PackageOffers } from '../../src/preflight/facts.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostPins } from '../../src/preflight/pins.js';
import {
  capacityRule, clockOffset, clockRule, installedAirflowRule, minimumPython, nfsRule, osRule, packageRule, portRule, preflight, pythonRule, tlsSwitchRule,
  type HostPreflightFacts, type PreflightHost,
} from '../../src/preflight/rules.js';
import { runRoles } from '../../src/run/execute.js';

const GiB = 1024 * 1024;
const debian = { osId: 'debian', like: '', osVersion: '12', family: 'debian' as const, hostname: 'h', container: false };

function inv(cluster: Partial<InventoryInput['cluster']> = {}, hosts: InventoryInput['hosts'] = [{ name: 'h1', address: '10.9.0.11', roles: ['etcd'] }]): Inventory {
  return Inventory.parse({ cluster: { name: 'unit', network: '10.9.0.0/24', ...cluster }, hosts });
}

function host(i: Inventory, name: string, facts: Partial<HostPreflightFacts>, roles?: Role[]): PreflightHost {
  const h = i.hosts.find((x) => x.name === name);
  if (!h) throw new Error(name);
  const r = roles ?? h.roles;
  return { host: h, roles: r, pins: hostPins(i, r, 'debian'), facts: { os: debian, ...facts } };
}

function offers(o: Partial<PackageOffers>): PackageOffers {
  return { manager: 'apt', indexed: true, offered: new Map(), installed: new Map(), sources: [], ...o };
}

test('os: Debian 12 and Rocky 9 pass; Debian 11, Ubuntu and an unknown OS are refused by name with the fix', () => {
  const i = inv();
  assert.deepEqual(osRule(host(i, 'h1', {})), []);
  assert.deepEqual(osRule(host(i, 'h1', { os: { ...debian, osId: 'rocky', osVersion: '9.4', family: 'rhel' } })), []);
  const [old] = osRule(host(i, 'h1', { os: { ...debian, osVersion: '11' } }));
  assert.equal(old?.severity, 'refuse');
  assert.equal(old?.message, 'unsupported OS debian 11: airflow-ha supports Debian 12 and Rocky Linux/RHEL 9');
  assert.match(old?.fix ?? '', /install Debian 12 or Rocky Linux 9/);
  assert.match(osRule(host(i, 'h1', { os: { ...debian, osId: 'ubuntu', osVersion: '22.04' } }))[0]?.message ?? '', /ubuntu 22\.04/);
  const none = osRule(host(i, 'h1', { os: { osId: 'alpine', like: '', osVersion: '3.19', hostname: 'h', container: false } }));
  assert.match(none[0]?.message ?? '', /unsupported OS alpine 3\.19/);
  // An unsupported OS is the only finding of its host: its other facts mean nothing.
  assert.deepEqual(preflight(i, [host(i, 'h1', { os: { ...debian, osVersion: '11' }, capacity: { memKiB: 1, diskKiB: 1 } })], { interpreter: 'python3.11' }).map((f) => f.rule), ['os']);
});

test('nfs: a kernel without nfsd or an NFSv4 client is refused in mode nfs with the fix dags.mode sync; mode sync checks nothing', () => {
  const i = inv({ dags: { mode: 'nfs' } }, [
    { name: 'nfs1', address: '10.9.0.11', roles: ['nfs', 'dag_processor'] },
    { name: 'w1', address: '10.9.0.12', roles: ['worker'], queues: ['default'] },
  ]);
  const none = { filesystems: [], modules: [], nfsdMounted: false };
  const server = nfsRule(i, host(i, 'nfs1', { nfs: none, os: { ...debian, container: true } }));
  assert.deepEqual(server.map((f) => f.rule), ['nfs:server', 'nfs:client']);
  assert.equal(server[0]?.message, "dags.mode nfs needs an NFS server on this nfs host, but this container's kernel (the machine's own: a container cannot load modules) has no nfsd (not in /proc/filesystems)");
  assert.match(server[0]?.fix ?? '', /cluster\.dags\.mode: sync/);
  const client = nfsRule(i, host(i, 'w1', { nfs: none }));
  assert.equal(client[0]?.message, 'dags.mode nfs mounts the DAG folder over NFSv4 on this Airflow host, but this kernel has no NFSv4 client (no nfs4 in /proc/filesystems, no nfsv4 module for modprobe)');
  // A VM whose modules modprobe finds passes; in a container a module does not count.
  assert.deepEqual(nfsRule(i, host(i, 'nfs1', { nfs: { ...none, modules: ['nfsd', 'nfsv4'] } })), []);
  assert.equal(nfsRule(i, host(i, 'nfs1', { nfs: { ...none, modules: ['nfsd', 'nfsv4'] }, os: { ...debian, container: true } })).length, 2);
  assert.deepEqual(nfsRule(i, host(i, 'nfs1', { nfs: { filesystems: ['nfsd', 'nfs4'], modules: [], nfsdMounted: true } })), []);
  const sync = inv({ dags: { mode: 'sync', source: './dags' } }, [{ name: 'w1', address: '10.9.0.12', roles: ['worker'], queues: ['default'] }]);
  assert.deepEqual(nfsRule(sync, host(sync, 'w1', { nfs: none })), []);
});

test('package:version: a pin nobody offers is refused with the offered versions; installed or offered passes; unknowable is a warning', () => {
  const i = inv({ versions: { etcd: '9.9.9', postgresql: '15', airflow: '2.9.0' } });
  const h = (p: PackageOffers) => host(i, 'h1', { packages: p });
  const missing = packageRule(i, h(offers({ offered: new Map([['etcd-server', ['3.4.23-4+b6']], ['etcd-client', ['3.4.23-4+b6']]]) })));
  assert.deepEqual(missing.map((f) => [f.severity, f.message]), [
    ['refuse', 'etcd-server 9.9.9 (cluster.versions.etcd) is not offered by the repositories configured on this host (offered: 3.4.23-4+b6)'],
    ['refuse', 'etcd-client 9.9.9 (cluster.versions.etcd) is not offered by the repositories configured on this host (offered: 3.4.23-4+b6)'],
  ]);
  assert.match(missing[0]?.fix ?? '', /set cluster\.versions\.etcd to an offered version/);
  const good = inv({ versions: { etcd: '3.4.23', postgresql: '15', airflow: '2.9.0' } });
  assert.deepEqual(packageRule(good, host(good, 'h1', { packages: offers({ offered: new Map([['etcd-server', ['3.4.23-4+b6']], ['etcd-client', ['3.4.23-4+b6']]]) }) })), []);
  // Installed at the pin (a live cluster): no finding even if the repositories dropped it.
  assert.deepEqual(packageRule(i, h(offers({ installed: new Map([['etcd-server', '9.9.9-1'], ['etcd-client', '9.9.9-1']]) }))), []);
  const noIndex = packageRule(i, h(offers({ indexed: false })));
  assert.equal(noIndex[0]?.severity, 'warn');
  assert.match(noIndex[0]?.message ?? '', /not checked: the host has no package index yet \(apt lists\)/);
  assert.match(noIndex[0]?.fix ?? '', /apt-get update/);
});

test('package:version with kind upstream: a repository not yet on the host is a warning, one that is there is checked', () => {
  const i = inv({ packages: { kind: 'upstream' }, versions: { patroni: '4.0.4', postgresql: '15', airflow: '2.9.0' } }, [{ name: 'h1', address: '10.9.0.11', roles: ['postgresql'] }]);
  const pins = hostPins(i, ['postgresql'], 'debian');
  assert.deepEqual(pins.map((p) => [p.name, p.version, p.source]), [
    ['postgresql-15', undefined, 'https://apt.postgresql.org/pub/repos/apt'],
    ['patroni', '4.0.4', 'https://apt.postgresql.org/pub/repos/apt'],
  ]);
  const debianOnly = offers({ offered: new Map([['postgresql-15', ['15.8-0+deb12u1']], ['patroni', ['3.0.2-1']]]), sources: ['http://deb.debian.org/debian'] });
  const later = packageRule(i, host(i, 'h1', { packages: debianOnly }));
  assert.deepEqual(later.map((f) => [f.severity, f.message]), [['warn', 'patroni 4.0.4 (cluster.versions.patroni) not checked yet: its repository https://apt.postgresql.org/pub/repos/apt is added by the run itself']]);
  const withPgdg = offers({ ...debianOnly, sources: [...debianOnly.sources, 'https://apt.postgresql.org/pub/repos/apt'] });
  assert.deepEqual(packageRule(i, host(i, 'h1', { packages: withPgdg })).map((f) => f.severity), ['refuse']);
  // RHEL: Team RabbitMQ's packages and their settings.
  const mq = inv({ packages: { kind: 'upstream' }, versions: { rabbitmq: '3.13.7', erlang: '26.2.5', postgresql: '15', airflow: '2.9.0' } });
  assert.deepEqual(hostPins(mq, ['rabbitmq'], 'rhel').map((p) => [p.name, p.setting, p.source]), [
    ['rabbitmq-server', 'rabbitmq', 'https://yum1.novemberain.com/rabbitmq'],
    ['erlang', 'erlang', 'https://yum1.novemberain.com/erlang'],
  ]);
});

test('python: below the minimum of the Airflow version is refused; the venv interpreter counts first', () => {
  assert.equal(minimumPython('2.9.0'), '3.8');
  assert.equal(minimumPython('3.0.2'), '3.9');
  assert.equal(minimumPython('3.4.0'), '3.10');
  const i = inv({}, [{ name: 'w1', address: '10.9.0.11', roles: ['worker'], queues: ['default'] }]);
  const old = pythonRule(i, host(i, 'w1', { pythons: new Map([['python3', '3.7.3']]) }), 'python3.11');
  assert.equal(old[0]?.message, "Airflow 3.4.0 needs Python 3.10 or newer; this host's python3 is 3.7.3", 'the default version is the newest Airflow 3');
  const on2 = inv({ versions: { postgresql: '15', airflow: '2.9.0' } }, [{ name: 'w1', address: '10.9.0.11', roles: ['worker'], queues: ['default'] }]);
  assert.equal(pythonRule(on2, host(on2, 'w1', { pythons: new Map([['python3', '3.7.3']]) }), 'python3.11')[0]?.message, "Airflow 2.9.0 needs Python 3.8 or newer; this host's python3 is 3.7.3");
  assert.match(old[0]?.fix ?? '', /install python3\.11/);
  assert.deepEqual(pythonRule(i, host(i, 'w1', { pythons: new Map([['python3', '3.7.3'], ['python3.11', '3.11.2']]) }), 'python3.11'), []);
  assert.deepEqual(pythonRule(i, host(i, 'w1', { pythons: new Map() }), 'python3.11'), [], 'missing: the airflow step installs it');
  const notAirflow = inv();
  assert.deepEqual(pythonRule(notAirflow, host(notAirflow, 'h1', { pythons: new Map([['python3', '3.5.0']]) }), 'python3.11'), []);
});

test('capacity: below seed 003 sizes is a warning naming the size and the roles; colocated roles take the largest floor', () => {
  const i = inv({}, [{ name: 'sql1', address: '10.9.0.11', roles: ['postgresql', 'etcd'] }, { name: 'mq1', address: '10.9.0.12', roles: ['rabbitmq'] }]);
  const small = capacityRule(host(i, 'sql1', { capacity: { memKiB: 2 * GiB, diskKiB: 10 * GiB } }));
  assert.deepEqual(small.map((f) => [f.rule, f.severity, f.message]), [
    ['capacity:memory', 'warn', '2.0 GiB of memory, below the 4 GiB seed 003 gives a VM with postgresql, etcd'],
    ['capacity:disk', 'warn', '10.0 GiB file system at /var, below the 20 GiB seed 003 gives a VM with postgresql, etcd'],
  ]);
  // A 4 GB VM shows a little less than 4 GiB: within the tolerance.
  assert.deepEqual(capacityRule(host(i, 'sql1', { capacity: { memKiB: 3.8 * GiB, diskKiB: 19.5 * GiB } })), []);
  assert.deepEqual(capacityRule(host(i, 'mq1', { capacity: { memKiB: 2 * GiB, diskKiB: 10 * GiB } })), []);
});

test('clock: a host more than 1 s off the others is refused by name; round-trip uncertainty is never counted as skew', () => {
  // Read at 1000.5 and 1000.6 on the host, round trip 1000-1001 here: the offset is in [-0.4, 0.5].
  const o = clockOffset(1000.5, 1000.6, 1000, 1001);
  assert.ok(o && Math.abs(o.lo + 0.4) < 1e-9 && Math.abs(o.hi - 0.5) < 1e-9, JSON.stringify(o));
  assert.equal(clockOffset(Number.NaN, 1, 0, 1), undefined);
  const i = inv({}, [1, 2, 3].map((n) => ({ name: `h${n}`, address: `10.9.0.1${n}`, roles: ['etcd'] as Role[] })));
  const at = (name: string, lo: number, hi: number) => host(i, name, { clock: { lo, hi } });
  const one = clockRule([at('h1', 0, 0.1), at('h2', -0.05, 0.05), at('h3', 2.5, 2.6)]);
  assert.deepEqual(one.map((f) => f.host), ['h3']);
  assert.equal(one[0]?.message, 'its clock is at least 2.5 s off h1, h2 (at most 1 s is accepted)');
  assert.match(one[0]?.fix ?? '', /chronyc makestep/);
  // Two hosts: no majority, both are named.
  assert.deepEqual(clockRule([at('h1', 0, 0.1), at('h2', 3, 3.1)]).map((f) => f.host), ['h1', 'h2']);
  // Bounds that overlap within 1 s: no finding, however wide the round trip.
  assert.deepEqual(clockRule([at('h1', -0.9, 0.9), at('h2', 0.5, 1.5)]), []);
});

test('port: a port a role needs held by another program is refused; the programs airflow-ha runs there (a re-run) are not', () => {
  const i = inv({}, [{ name: 'sql1', address: '10.9.0.11', roles: ['postgresql', 'etcd'] }, { name: 'web1', address: '10.9.0.12', roles: ['webserver', 'haproxy', 'flower'] }, { name: 'mq1', address: '10.9.0.13', roles: ['rabbitmq'] }]);
  const l = (port: number, ...processes: string[]) => ({ address: '0.0.0.0', port, processes });
  const taken = portRule(i, host(i, 'sql1', { listeners: [l(22, 'sshd'), l(5432, 'mysqld'), l(2379, 'etcd'), l(9999, 'nginx')] }));
  assert.deepEqual(taken.map((f) => [f.severity, f.message]), [['refuse', 'postgresql needs port 5432, but mysqld listens on it (0.0.0.0:5432)']]);
  assert.equal(taken[0]?.fix, 'stop and disable mysqld on this host, or move postgresql\'s port with cluster.ports.postgres');
  const live = [l(5432, 'postgres'), l(8008, 'patroni'), l(2379, 'etcd'), l(2380, 'etcd')];
  assert.deepEqual(portRule(i, host(i, 'sql1', { listeners: live })), []);
  const web = [l(80, 'haproxy'), l(5000, 'haproxy'), l(7000, 'haproxy'), l(8080, 'gunicorn'), l(8080, 'airflow webserv'), l(5555, 'celery'), l(8793, 'python3.11')];
  assert.deepEqual(portRule(i, host(i, 'web1', { listeners: web })), []);
  // A live RabbitMQ node on Debian: epmd's port held by systemd (epmd.socket), the rest by the Erlang VM.
  assert.deepEqual(portRule(i, host(i, 'mq1', { listeners: [l(4369, 'systemd'), l(5672, 'beam.smp'), l(15672, 'beam.smp'), l(25672, 'beam.smp')] })), []);
  // A kernel socket (no process) is never a finding; a --playbook base run sets up no role.
  assert.deepEqual(portRule(i, host(i, 'sql1', { listeners: [l(5432)] })), []);
  assert.deepEqual(portRule(i, host(i, 'sql1', { listeners: [l(5432, 'mysqld')] }, [])), []);
});

test('airflow:installed: a host on another Airflow version than the inventory asks for is refused, with both ways out; the same version, no Airflow yet or no Airflow role pass', () => {
  const hosts: InventoryInput['hosts'] = [{ name: 'w1', address: '10.9.0.11', roles: ['worker'], queues: ['default'] }, { name: 'e1', address: '10.9.0.12', roles: ['etcd'] }];
  const unpinned = inv({}, hosts);
  assert.equal(unpinned.cluster.versions.airflow, '3.4.0', 'no pin: the newest Airflow 3');
  const [f, ...more] = installedAirflowRule(unpinned, host(unpinned, 'w1', { airflowInstalled: '2.9.0' }));
  assert.deepEqual(more, []);
  assert.equal(f?.rule, 'airflow:installed');
  assert.equal(f?.severity, 'refuse');
  assert.match(f?.message ?? '', /^this host runs Airflow 2\.9\.0; the inventory asks for 3\.4\.0 \(cluster\.versions\.airflow; when it is not set, the default is the newest Airflow 3\)/);
  assert.match(f?.fix ?? '', /set cluster\.versions\.airflow: "2\.9\.0" .* run `airflow-ha upgrade -i FILE --to 3\.4\.0`/);
  const pinned = inv({ versions: { postgresql: '15', airflow: '2.9.0' } }, hosts);
  assert.deepEqual(installedAirflowRule(pinned, host(pinned, 'w1', { airflowInstalled: '2.9.0' })), []);
  assert.deepEqual(installedAirflowRule(unpinned, host(unpinned, 'w1', { airflowInstalled: null })), [], 'a new host');
  assert.deepEqual(installedAirflowRule(unpinned, host(unpinned, 'e1', { airflowInstalled: '2.9.0' })), [], 'not an Airflow host');
  // The whole preflight carries it, so bootstrap and apply refuse before the lock and any step.
  assert.deepEqual(preflight(unpinned, [host(unpinned, 'w1', { os: debian, airflowInstalled: '2.9.0' })], { interpreter: 'python3.11' }).map((x) => x.rule), ['airflow:installed']);
});

test('tls:switch: an etcd member on another scheme than cluster.tls is refused both ways; a new member, the same scheme or a host without etcd pass', () => {
  const hosts: InventoryInput['hosts'] = [{ name: 'e1', address: '10.9.0.12', roles: ['etcd'] }, { name: 'w1', address: '10.9.0.11', roles: ['worker'], queues: ['default'] }];
  const plain = inv({}, hosts);
  const tls = inv({ tls: { enabled: true } }, hosts);
  const [on, ...more] = tlsSwitchRule(tls, host(tls, 'e1', { etcdScheme: 'http' }));
  assert.deepEqual(more, []);
  assert.equal(on?.rule, 'tls:switch');
  assert.equal(on?.severity, 'refuse');
  assert.match(on?.message ?? '', /^this etcd member serves http:\/\/ \(ETCD_LISTEN_CLIENT_URLS\) and the inventory turns cluster\.tls on: turning TLS on for a running cluster is not a rolling change yet/);
  assert.match(on?.fix ?? '', /keep cluster\.tls\.enabled: false/);
  const [off] = tlsSwitchRule(plain, host(plain, 'e1', { etcdScheme: 'https' }));
  assert.match(off?.message ?? '', /serves https:\/\/ .* has cluster\.tls off: turning TLS off/);
  assert.match(off?.fix ?? '', /cluster\.tls\.enabled: true back/);
  assert.deepEqual(tlsSwitchRule(tls, host(tls, 'e1', { etcdScheme: 'https' })), []);
  assert.deepEqual(tlsSwitchRule(plain, host(plain, 'e1', { etcdScheme: 'http' })), []);
  assert.deepEqual(tlsSwitchRule(tls, host(tls, 'e1', { etcdScheme: null })), [], 'a new member');
  assert.deepEqual(tlsSwitchRule(tls, host(tls, 'w1', { etcdScheme: 'http' })), [], 'not an etcd host');
  // The whole preflight carries it: bootstrap and apply refuse before the lock and any step.
  assert.deepEqual(preflight(tls, [host(tls, 'e1', { os: debian, etcdScheme: 'http' })], { interpreter: 'python3.11' }).map((x) => x.rule), ['tls:switch']);
});

test('etcdSchemeFact reads the scheme of the first ETCD_LISTEN_CLIENT_URLS of the env files, quoted or not; no file is undefined', () => {
  const root = mkdtempSync(join(tmpdir(), 'ah-pf-'));
  try {
    const file = join(root, 'etcd');
    const fact = etcdSchemeFact([file, join(root, 'none')]);
    const read = () => fact.parse(execFileSync('/bin/sh', ['-c', fact.cmd.render()], { encoding: 'utf8' }), 0);
    assert.equal(read(), undefined, 'no file');
    writeFileSync(file, '# ETCD_LISTEN_CLIENT_URLS="https://x"\nETCD_NAME="e1"\nETCD_LISTEN_CLIENT_URLS="http://10.0.0.1:2379,http://127.0.0.1:2379"\n');
    assert.equal(read(), 'http');
    writeFileSync(file, 'ETCD_LISTEN_CLIENT_URLS=https://10.0.0.1:2379\n');
    assert.equal(read(), 'https');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('installedAirflowFact reads the Version of the dist-info behind the venv link, through the link or in a plain folder; nothing installed is undefined', () => {
  const root = mkdtempSync(join(tmpdir(), 'ah-pf-'));
  try {
    const run = (venv: string) => { const f = installedAirflowFact(venv); return f.parse(execFileSync('sh', ['-c', f.cmd.toString()], { encoding: 'utf8' }), 0); };
    const dist = join(root, 'venv-2.11.0', 'lib', 'python3.11', 'site-packages', 'apache_airflow-2.11.0.dist-info');
    mkdirSync(dist, { recursive: true });
    writeFileSync(join(dist, 'METADATA'), 'Metadata-Version: 2.1\nName: apache-airflow\nVersion: 2.11.0\nSummary: x\n');
    execFileSync('ln', ['-s', 'venv-2.11.0', join(root, 'venv')]);
    assert.equal(run(join(root, 'venv')), '2.11.0');
    assert.equal(run(join(root, 'venv-2.11.0')), '2.11.0');
    assert.equal(run(join(root, 'absent')), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('the refusal error: exit 2, every refused host with rule, what and fix', () => {
  const e = new PreflightError([
    { host: 'nfs1', rule: 'nfs:server', message: 'no nfsd', fix: 'set cluster.dags.mode: sync' },
    { host: 'nfs2', rule: 'nfs:server', message: 'no nfsd', fix: 'set cluster.dags.mode: sync' },
  ]);
  assert.equal(e.exitCode, 2);
  assert.equal(e.message, 'preflight refused the run on 2 host(s) (nfs1, nfs2); nothing was changed:\n  nfs1: [nfs:server] no nfsd\n      fix: set cluster.dags.mode: sync\n  nfs2: [nfs:server] no nfsd\n      fix: set cluster.dags.mode: sync');
});

test('runRoles: the roles a run sets up on a host come from the steps that select it', () => {
  const h = { name: 'a', address: '10.9.0.11', roles: ['etcd', 'nfs', 'worker'] as Role[] };
  assert.deepEqual(runRoles([{ name: 'base', hosts: { all: true }, tasks: () => [] }], h), []);
  assert.deepEqual(runRoles([{ name: 'nfs', hosts: { roles: ['nfs'] }, tasks: () => [] }], h), ['nfs']);
  assert.deepEqual(runRoles([{ name: 'added', hosts: { names: ['a'] }, tasks: () => [] }], h), ['etcd', 'nfs', 'worker']);
});

test('fact parsers: ss, meminfo/df, /proc/filesystems, python -V, apt-cache madison and dpkg-query', () => {
  const ss = [
    'LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=101,fd=3))',
    'LISTEN 0      4096       127.0.0.1:5432      0.0.0.0:*    users:(("postgres",pid=7,fd=5),("postgres",pid=8,fd=5))',
    'LISTEN 0      64                 *:2049            *:*',
    'LISTEN 0      511             [::]:80           [::]:*    users:(("nginx",pid=9,fd=6))',
  ].join('\n');
  assert.deepEqual(listenersFact.parse(ss, 0), [
    { address: '0.0.0.0', port: 22, processes: ['sshd'] },
    { address: '127.0.0.1', port: 5432, processes: ['postgres'] },
    { address: '*', port: 2049, processes: [] },
    { address: '[::]', port: 80, processes: ['nginx'] },
  ]);
  assert.deepEqual(capacityFact.parse('4028392\n20466256\n', 0), { memKiB: 4028392, diskKiB: 20466256 });
  assert.deepEqual(nfsSupportFact.parse('fs nfsd\nmodule nfsv4\nmounted\n', 0), { filesystems: ['nfsd'], modules: ['nfsv4'], nfsdMounted: true });
  assert.deepEqual([...pythonsFact(['python3']).parse('python3 Python 3.11.2\n', 0)], [['python3', '3.11.2']]);
  const p = packageOffersFact({ debian: ['etcd-server'], rhel: ['etcd'] }).parse('manager apt\nlists 4\noffer etcd-server 3.4.23-4+b6\ninstalled etcd-server 3.4.23-4+b6\nsource http://deb.debian.org/debian\n', 0);
  assert.deepEqual({ ...p, offered: [...p.offered], installed: [...p.installed] }, {
    manager: 'apt', indexed: true, offered: [['etcd-server', ['3.4.23-4+b6']]], installed: [['etcd-server', '3.4.23-4+b6']], sources: ['http://deb.debian.org/debian'],
  });
});
