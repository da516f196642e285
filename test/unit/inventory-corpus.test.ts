/**
 * The malformed-inventory corpus: every file in test/fixtures/inventories/bad breaks one rule of
 * good/minimal.yaml, every file in warn/ trips one warning. Each must produce exactly the
 * diagnostic below: position, rule id, YAML path and a message fragment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatDiagnostic, InputError, type Diagnostic } from '../../src/core/errors.js';
import { playbookRoles } from '../../playbooks/catalog.js';
import { decodeInventory, parseInventory, type LoadOptions } from '../../src/inventory/load.js';
import { AIRFLOW_3_NEWEST } from '../../src/inventory/versions.js';

const root = fileURLToPath(new URL('../../../test/fixtures/inventories/', import.meta.url));
/** The bootstrap playbook's roles, each with the step that needs it, as `validate` passes them. */
const bootstrap: LoadOptions = { requiredRoles: playbookRoles.bootstrap, playbook: 'bootstrap' };

interface Expect {
  line: number;
  col: number;
  rule: string;
  path: string;
  /** A fragment the message must contain. */
  message: string;
  /** Value as written, when the diagnostic has one. */
  value?: string;
  /** How many errors the file has (default 1). */
  errors?: number;
  opts?: LoadOptions;
}

const BAD: Record<string, Expect> = {
  // YAML
  'yaml-syntax-unclosed-flow.yaml': { line: 12, col: 64, rule: 'yaml:syntax', path: 'hosts[2].roles', message: 'Flow sequence in block collection must be sufficiently indented and end with a ]', errors: 2 },
  'yaml-tab-indent.yaml': { line: 8, col: 1, rule: 'yaml:syntax', path: '(document)', message: 'Tabs are not allowed as indentation' },
  'yaml-undefined-alias.yaml': { line: 11, col: 46, rule: 'yaml:syntax', path: 'hosts[1].roles', message: 'alias *frontend names no anchor', value: '*frontend' },
  'duplicate-key.yaml': { line: 20, col: 5, rule: 'yaml:duplicate-key', path: 'hosts[8].address', message: 'duplicate key "address" (first on line 19)', value: 'address' },
  // Schema
  'empty-file.yaml': { line: 1, col: 1, rule: 'schema:invalid_type', path: '(document)', message: 'the inventory is empty' },
  'unknown-key-typo.yaml': { line: 19, col: 5, rule: 'schema:unrecognized_keys', path: 'hosts[8].adress', message: 'unknown key "adress" in hosts[8]; did you mean "address"?', value: 'adress' },
  'unknown-key-case.yaml': { line: 6, col: 65, rule: 'schema:unrecognized_keys', path: 'cluster.vips[0].routerID', message: 'did you mean "routerId"?', value: 'routerID' },
  'unknown-top-level-key.yaml': { line: 9, col: 1, rule: 'schema:unrecognized_keys', path: 'host', message: 'unknown key "host"; did you mean "hosts"?', value: 'host' },
  'unknown-role.yaml': { line: 11, col: 67, rule: 'schema:invalid_value', path: 'hosts[1].roles[2]', message: '"shceduler" is not one of: etcd, postgresql, haproxy', value: 'shceduler' },
  'wrong-type-router-id.yaml': { line: 6, col: 75, rule: 'schema:invalid_type', path: 'cluster.vips[0].routerId', message: 'expected a number, got a string', value: '"51"' },
  'wrong-type-version-number.yaml': { line: 6, col: 17, rule: 'schema:invalid_type', path: 'cluster.versions.postgresql', message: 'expected a string, got an integer: quote it, e.g. "15"', value: '15' },
  'router-id-too-big.yaml': { line: 6, col: 75, rule: 'schema:too_big', path: 'cluster.vips[0].routerId', message: 'must be <= 255', value: '256' },
  'bad-ipv4.yaml': { line: 13, col: 27, rule: 'schema:invalid_format', path: 'hosts[3].address', message: '"10.20.0.256" is not an IPv4 address', value: '10.20.0.256' },
  'postgres-dcs-parameter.yaml': { line: 8, col: 24, rule: 'postgresql:patroni-parameter', path: 'cluster.postgresql.parameters.max_connections', message: 'Patroni keeps it in the DCS', value: 'max_connections' },
  'bad-cidr.yaml': { line: 4, col: 12, rule: 'schema:invalid_format', path: 'cluster.network', message: '"10.20.0.0/33" is not an IPv4 network in CIDR notation', value: '10.20.0.0/33' },
  'missing-network.yaml': { line: 3, col: 3, rule: 'schema:required', path: 'cluster.network', message: 'missing required key "network"' },
  'bad-host-name.yaml': { line: 14, col: 13, rule: 'pattern:host-name', path: 'hosts[4].name', message: 'a host name is a DNS label', value: 'DB_3' },
  'empty-hosts.yaml': { line: 9, col: 8, rule: 'schema:too_small', path: 'hosts', message: 'must list at least one host', value: '[]' },
  // Semantic rules
  'bad-timezone.yaml': { line: 5, col: 13, rule: 'cluster:timezone', path: 'cluster.timezone', message: '"Asia/Teheran" is not an IANA time zone', value: 'Asia/Teheran' },
  'duplicate-name.yaml': { line: 17, col: 13, rule: 'host:unique-name', path: 'hosts[7].name', message: 'name mq2 is already used by hosts[6] on line 16', value: 'mq2' },
  'duplicate-address.yaml': { line: 14, col: 27, rule: 'host:unique-address', path: 'hosts[4].address', message: 'address 10.20.0.22 is already used by hosts[3] (db2) on line 13', value: '10.20.0.22' },
  'address-outside-network.yaml': { line: 16, col: 27, rule: 'net:outside-network', path: 'hosts[6].address', message: 'address of mq2 10.21.0.32 is outside cluster.network 10.20.0.0/24', value: '10.21.0.32' },
  'network-address.yaml': { line: 17, col: 27, rule: 'net:reserved-address', path: 'hosts[7].address', message: 'is the network address of 10.20.0.0/24', value: '10.20.0.0' },
  'broadcast-address.yaml': { line: 19, col: 14, rule: 'net:reserved-address', path: 'hosts[8].address', message: 'is the broadcast address of 10.20.0.0/24', value: '10.20.0.255' },
  'vip-equals-host.yaml': { line: 6, col: 37, rule: 'vip:equals-host', path: 'cluster.vips[0].address', message: 'VIP airflow-vip 10.20.0.11 is also the address of host lb1', value: '10.20.0.11' },
  'vip-outside-network.yaml': { line: 6, col: 37, rule: 'net:outside-network', path: 'cluster.vips[0].address', message: 'VIP airflow-vip 192.168.83.210 is outside cluster.network', value: '192.168.83.210' },
  'vip-duplicate-address.yaml': { line: 7, col: 35, rule: 'vip:unique-address', path: 'cluster.vips[1].address', message: 'VIP address 10.20.0.100 is already used by cluster.vips[0]', value: '10.20.0.100' },
  'vip-name-clash.yaml': { line: 6, col: 15, rule: 'vip:name-clash', path: 'cluster.vips[0].name', message: "VIP name lb1 is also a host's name", value: 'lb1' },
  'dags-nfs-without-nfs-hosts.yaml': { line: 7, col: 17, rule: 'dags:nfs-hosts', path: 'cluster.dags.mode', message: 'DAGs on NFS, but no host has the role nfs', value: 'nfs' },
  'dags-nfs-without-vip.yaml': { line: 6, col: 5, rule: 'dags:nfs-vip', path: 'cluster.vips', message: 'DAGs on NFS from nfs1, nfs2, but no VIP has the role nfs' },
  'dags-git-airflow2.yaml': { line: 9, col: 11, rule: 'dags:git-airflow', path: 'cluster.dags.mode', message: "mode git uses Airflow 3's Git DAG bundle; this cluster runs Airflow 2.10.5", value: 'git' },
  'dags-git-without-url.yaml': { line: 8, col: 5, rule: 'dags:git-url', path: 'cluster.dags', message: 'set dags.git.url' },
  'dags-git-ssh-without-known-hosts.yaml': { line: 10, col: 7, rule: 'dags:git-known-hosts', path: 'cluster.dags.git', message: 'pin the server\'s host key in dags.git.knownHosts' },
  'dags-sync-without-source.yaml': { line: 8, col: 5, rule: 'dags:sync-source', path: 'cluster.dags', message: 'set dags.source' },
  'ftp-passive-range-reversed.yaml': { line: 7, col: 49, rule: 'ftp:passive-range', path: 'cluster.ports.ftpPassiveMax', message: 'the FTP passive range ends (30000) before it starts', value: '30000' },
  'vip-role-no-hosts.yaml': { line: 7, col: 52, rule: 'vip:role-hosts', path: 'cluster.vips[1].role', message: 'no host has role nfs, so no host can hold VIP nfs-vip', value: 'nfs' },
  'duplicate-router-id.yaml': { line: 7, col: 71, rule: 'vip:unique-router-id', path: 'cluster.vips[1].routerId', message: 'routerId 51 is already used by cluster.vips[0]', value: '51' },
  'etcd-two-members.yaml': { line: 12, col: 59, rule: 'quorum:etcd', path: 'hosts[2].roles[1]', message: '2 etcd hosts (db1, db2): a 2-member cluster has a quorum of 2 and tolerates no failure' },
  'rabbitmq-two-nodes.yaml': { line: 15, col: 47, rule: 'quorum:rabbitmq', path: 'hosts[5].roles[0]', message: '2 rabbitmq hosts (mq1, mq2): a 2-member cluster' },
  'postgresql-without-etcd.yaml': { line: 12, col: 47, rule: 'patroni:needs-etcd', path: 'hosts[2].roles[0]', message: 'but no etcd host: Patroni needs etcd as its DCS' },
  'required-role-missing.yaml': {
    line: 10,
    col: 3,
    rule: 'role:required',
    path: 'hosts',
    message: 'no host has role rabbitmq, which playbook bootstrap needs',
    value: 'rabbitmq',
    opts: { requiredRoles: ['etcd', 'postgresql', 'rabbitmq', 'haproxy'], playbook: 'bootstrap' },
  },
  'port-haproxy-in-rabbitmq-stream-range.yaml': {
    line: 16,
    col: 46,
    rule: 'port:collision',
    path: 'hosts[6].roles',
    message: "on host mq2, haproxy's port haproxyReplica=6000 overlaps rabbitmq's stream replication range 6000-6500",
    value: '6000',
  },
  'port-two-roles-same-port.yaml': { line: 6, col: 13, rule: 'port:collision', path: 'cluster.ports.flower', message: "on host lb1, flower's port flower=8080 is the same port as webserver's port webserver=8080", value: '8080' },
  'port-duplicate-setting.yaml': { line: 6, col: 15, rule: 'port:duplicate', path: 'cluster.ports.etcdPeer', message: "on hosts db1, db2, db3, etcd's port etcdPeer=2379 is the same port as etcd's port etcdClient=2379", value: '2379' },
  'port-ssh-collision.yaml': { line: 9, col: 9, rule: 'port:collision', path: 'ssh.port', message: "haproxy's port haproxyStats=7000 is the same port as sshd port 7000", value: '7000' },
  'jump-unknown-host.yaml': { line: 22, col: 18, rule: 'ssh:jump-unknown-host', path: 'hosts[8].ssh.jump', message: 'jump host bastoin is not a host of this inventory', value: 'bastoin' },
  'jump-self.yaml': { line: 22, col: 18, rule: 'ssh:jump-self', path: 'hosts[8].ssh.jump', message: 'host worker1 cannot be its own jump host', value: 'worker1' },
  'jump-cycle.yaml': { line: 10, col: 100, rule: 'ssh:jump-cycle', path: 'hosts[0].ssh.jump', message: 'jump hosts form a loop: lb1 -> worker1 -> lb1', value: 'worker1' },
  'lab-address-clash.yaml': { line: 9, col: 12, rule: 'lab:address-clash', path: 'lab.address', message: 'lab bridge address 10.20.0.31 is also the address of host mq1', value: '10.20.0.31' },
  'upstream-without-versions.yaml': { line: 8, col: 5, rule: 'packages:upstream-versions', path: 'cluster.versions', message: 'kind upstream needs pinned versions: versions.patroni (role postgresql), versions.erlang (role rabbitmq)' },
  'mirror-key-unknown.yaml': { line: 11, col: 13, rule: 'packages:mirror-key', path: 'cluster.packages.mirrors.pgdq', message: '"pgdq" is not a source airflow-ha can mirror; did you mean "pgdg"?', value: 'pgdq' },
  // Values that would inject lines into a config or a command: each named pattern at its line.
  'inject-version-newline.yaml': { line: 6, col: 13, rule: 'pattern:version', path: 'cluster.versions.erlang', message: '"26.2.5\\nPackage: *\\nPin: origin evil.example" holds U+000A: a version' },
  'inject-haproxy-timeout-newline.yaml': { line: 10, col: 111, rule: 'pattern:haproxy-time', path: 'hosts[0].vars.haproxyTimeout', message: 'holds U+000A: an HAProxy time' },
  'inject-interface-newline.yaml': { line: 14, col: 18, rule: 'pattern:interface', path: 'hosts[0].vars.interface', message: 'holds U+000A: a network interface name' },
  'inject-path-dotdot.yaml': { line: 8, col: 11, rule: 'pattern:path', path: 'cluster.dags.path', message: 'no . or .. segment', value: '/opt/airflow/../../etc/cron.d' },
  'inject-source-dotdot.yaml': { line: 7, col: 13, rule: 'pattern:local-path', path: 'cluster.dags.source', message: 'without a .. segment', value: 'dags/../../../etc' },
  'inject-queue-control-char.yaml': { line: 21, col: 23, rule: 'pattern:queue', path: 'hosts[8].queues[1]', message: '"reports\\u0007" holds U+0007: a queue name', value: '"reports\\a"' },
  'inject-proxy-url-newline.yaml': { line: 6, col: 12, rule: 'pattern:url', path: 'cluster.packages.proxy', message: 'holds U+000A: an http:// or https:// URL' },
  'inject-free-var-control-char.yaml': { line: 23, col: 20, rule: 'pattern:printable', path: 'hosts[8].vars.rack.row', message: 'holds U+000D: free text on one line' },
  'lab-address-outside.yaml': { line: 9, col: 12, rule: 'net:outside-network', path: 'lab.address', message: 'lab bridge address 10.99.0.1 is outside cluster.network', value: '10.99.0.1' },
  // What the playbook's steps need, each named with the step.
  'required-role-scheduler.yaml': {
    line: 10,
    col: 3,
    rule: 'role:required',
    path: 'hosts',
    message: 'no host has role scheduler, which playbook bootstrap needs (step "airflow db migrate + admin user": the first scheduler host runs the database migrations',
    value: 'scheduler',
    opts: bootstrap,
  },
  'required-role-worker.yaml': {
    line: 10,
    col: 3,
    rule: 'role:required',
    path: 'hosts',
    message: 'no host has role worker, which playbook bootstrap needs (step "airflow workers": without a Celery worker nothing consumes the queued tasks)',
    value: 'worker',
    opts: bootstrap,
  },
  'timezone-case.yaml': { line: 5, col: 13, rule: 'cluster:timezone', path: 'cluster.timezone', message: '"asia/tehran" is not an IANA time zone of the tz database (names are case-sensitive); did you mean "Asia/Tehran"?', value: 'asia/tehran' },
  // Versions outside the component table (src/inventory/versions.ts).
  'version-postgresql.yaml': { line: 5, col: 27, rule: 'version:postgresql', path: 'cluster.versions.postgresql', message: 'postgresql 16 is not a supported version: airflow-ha supports 15', value: '16' },
  'version-patroni.yaml': { line: 5, col: 24, rule: 'version:patroni', path: 'cluster.versions.patroni', message: 'patroni 2.1.4 is not a supported version: airflow-ha supports 3.x, 4.x', value: '2.1.4' },
  'version-etcd.yaml': { line: 5, col: 21, rule: 'version:etcd', path: 'cluster.versions.etcd', message: 'etcd 3.3.27 is not a supported version: airflow-ha supports 3.4.x, 3.5.x, 3.6.x', value: '3.3.27' },
  'version-rabbitmq.yaml': { line: 5, col: 25, rule: 'version:rabbitmq', path: 'cluster.versions.rabbitmq', message: 'rabbitmq 3.1 is not a supported version: airflow-ha supports 3.10.x, 3.11.x, 3.12.x, 3.13.x, 4.0.x, 4.1.x', value: '3.1' },
  'version-erlang.yaml': { line: 5, col: 23, rule: 'version:erlang', path: 'cluster.versions.erlang', message: 'erlang 24.3 is not a supported version: airflow-ha supports 25.x, 26.x, 27.x', value: '24.3' },
  'version-python.yaml': { line: 5, col: 23, rule: 'version:python', path: 'cluster.versions.python', message: 'python 3.12 is not a supported version: airflow-ha supports 3.11', value: '3.12' },
  'postgresql-parameter-typo.yaml': { line: 8, col: 22, rule: 'postgresql:unknown-parameter', path: 'cluster.postgresql.parameters.shared_bufers', message: 'shared_bufers is not a PostgreSQL 15 parameter; did you mean "shared_buffers"?', value: 'shared_bufers' },
  'jump-port-range.yaml': { line: 9, col: 9, rule: 'ssh:jump-port', path: 'ssh.jump', message: 'port 70000 of jump host ops@10.20.0.5:70000 is not a TCP port (1-65535)', value: 'ops@10.20.0.5:70000' },
  'identity-file-missing.yaml': {
    line: 9,
    col: 17,
    rule: 'ssh:identity-file',
    path: 'ssh.identityFile',
    message: `identity file ${root}bad/keys/missing_ed25519 does not exist on this machine`,
    value: 'keys/missing_ed25519',
    opts: { localFiles: { dir: `${root}bad`, home: '/nonexistent-home' } },
  },
  // The file itself: not UTF-8 text.
  'file-binary-nul.yaml': { line: 3, col: 13, rule: 'file:binary', path: '(document)', message: 'the file holds a NUL byte: it is a binary file, not a YAML inventory' },
  'file-invalid-utf8.yaml': { line: 4, col: 29, rule: 'file:encoding', path: '(document)', message: 'byte 0xE9 is not UTF-8 (a file saved as Latin-1 or Windows-1252?): save it as UTF-8' },
  'file-utf16-bom.yaml': { line: 1, col: 1, rule: 'file:encoding', path: '(document)', message: 'the file is UTF-16 (byte order mark FF FE), not UTF-8: save it as UTF-8' },
};

const WARN: Record<string, Expect> = {
  'etcd-one-member.yaml': { line: 12, col: 59, rule: 'quorum:etcd', path: 'hosts[2].roles[1]', message: '1 etcd host (db1): not highly available' },
  'rabbitmq-four-nodes.yaml': { line: 15, col: 47, rule: 'quorum:rabbitmq', path: 'hosts[5].roles[0]', message: 'an even count tolerates no more failures than 3 members' },
  'postgresql-single.yaml': { line: 12, col: 47, rule: 'quorum:postgresql', path: 'hosts[2].roles[0]', message: 'no replica to fail over to' },
  'worker-without-queues.yaml': { line: 18, col: 5, rule: 'worker:queues', path: 'hosts[8].queues', message: 'worker host worker1 has no queues: it will consume only the queue "default"' },
  'queues-on-non-worker.yaml': { line: 15, col: 66, rule: 'host:queues-unused', path: 'hosts[5].queues', message: 'host mq1 has queues but not the role worker' },
  'vip-role-one-host.yaml': { line: 6, col: 56, rule: 'vip:role-hosts', path: 'cluster.vips[0].role', message: 'only lb1 has role haproxy: VIP airflow-vip cannot fail over', value: 'haproxy' },
  'mirrors-with-distro.yaml': { line: 10, col: 7, rule: 'packages:mirrors-unused', path: 'cluster.packages.mirrors', message: 'mirrors are read only with kind upstream' },
  'network-host-bits.yaml': { line: 4, col: 12, rule: 'network:host-bits', path: 'cluster.network', message: 'the network is 10.20.0.0/24', value: '10.20.0.1/24' },
  'network-too-broad.yaml': { line: 4, col: 12, rule: 'network:too-broad', path: 'cluster.network', message: '/8 spans 16,777,216 addresses: the firewall admits the whole cluster network', value: '10.0.0.0/8' },
  // Single points of failure of the seed's redundant layout.
  'spof-scheduler.yaml': { line: 10, col: 67, rule: 'spof:scheduler', path: 'hosts[0].roles[2]', message: 'only lb1 has role scheduler: no task is scheduled while it is down', value: 'scheduler' },
  'spof-webserver.yaml': { line: 10, col: 56, rule: 'spof:webserver', path: 'hosts[0].roles[1]', message: 'only lb1 has role webserver: the UI and the REST API are down with it', value: 'webserver' },
  'spof-dag-processor.yaml': { line: 15, col: 57, rule: 'spof:dag_processor', path: 'hosts[5].roles[1]', message: 'only mq1 has role dag_processor: DAG files are not parsed while it is down', value: 'dag_processor' },
  'spof-database-path.yaml': { line: 3, col: 3, rule: 'spof:database-path', path: 'cluster.vips', message: 'no VIP has role haproxy: every Airflow host reaches PostgreSQL through HAProxy on lb1 (10.20.0.11) alone' },
  'vip-keepalived.yaml': { line: 7, col: 51, rule: 'vip:keepalived', path: 'cluster.vips[1].role', message: 'no host of role rabbitmq runs keepalived, so VIP mq-vip 10.20.0.101 is never held', value: 'rabbitmq' },
};

/** A fixture's text, decoded as `airflow-ha` decodes a file (throws for the file-level problems). */
function read(name: string): string {
  return decodeInventory(readFileSync(root + name), name);
}

function check(d: Diagnostic | undefined, name: string, exp: Expect): void {
  assert.ok(d, `${name}: no diagnostic`);
  const got = formatDiagnostic(d);
  assert.equal(d.pos.file, name, got);
  assert.deepEqual({ line: d.pos.line, col: d.pos.col, rule: d.rule, path: d.path }, { line: exp.line, col: exp.col, rule: exp.rule, path: exp.path }, got);
  assert.ok(d.message.includes(exp.message), `${name}: message lacks ${JSON.stringify(exp.message)}:\n${got}`);
  if (exp.value !== undefined) assert.equal(d.value, exp.value, got);
}

test('the corpus has a file for every expectation and an expectation for every file', () => {
  assert.deepEqual(readdirSync(root + 'bad').sort(), Object.keys(BAD).sort());
  assert.deepEqual(readdirSync(root + 'warn').sort(), Object.keys(WARN).sort());
  assert.ok(Object.keys(BAD).length >= 24);
});

test('the base of the corpus is valid, with no warning: without a pin it runs the newest Airflow 3', () => {
  const loaded = parseInventory(read('good/minimal.yaml'), 'good/minimal.yaml', { requiredRoles: ['etcd', 'postgresql', 'rabbitmq', 'haproxy'] });
  assert.deepEqual(loaded.warnings.map((w) => w.rule), []);
  assert.equal(loaded.inventory.cluster.versions.airflow, AIRFLOW_3_NEWEST);
  assert.equal(loaded.inventory.hosts.length, 9);
});

for (const [file, exp] of Object.entries(BAD)) {
  test(`bad/${file}: ${exp.rule} at ${exp.line}:${exp.col}`, () => {
    const name = `bad/${file}`;
    const n = exp.errors ?? 1;
    assert.throws(
      () => parseInventory(read(name), name, exp.opts),
      (err: unknown) => {
        assert.ok(err instanceof InputError, String(err));
        assert.equal(err.exitCode, 2);
        assert.equal(err.message, `inventory ${name} has ${n} error(s)`);
        const errors = err.diagnostics.filter((d) => d.severity === 'error');
        assert.equal(errors.length, n, errors.map(formatDiagnostic).join('\n'));
        check(errors[0], name, exp);
        return true;
      },
    );
  });
}

for (const [file, exp] of Object.entries(WARN)) {
  test(`warn/${file}: ${exp.rule} at ${exp.line}:${exp.col}`, () => {
    const name = `warn/${file}`;
    const loaded = parseInventory(read(name), name, exp.opts);
    // No file pins Airflow 2.x, so none has the end-of-life or node-loss warning: one warning each.
    const warnings = loaded.warnings;
    assert.equal(warnings.length, 1, loaded.warnings.map(formatDiagnostic).join('\n'));
    const w = warnings[0];
    assert.equal(w?.severity, 'warning');
    check(w, name, exp);
  });
}

test('formatDiagnostic renders file:line:col, severity, rule, path, message and value', () => {
  const name = 'bad/unknown-key-typo.yaml';
  try {
    parseInventory(read(name), name);
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof InputError);
    assert.equal(
      formatDiagnostic(err.diagnostics[0]!),
      'bad/unknown-key-typo.yaml:19:5: error [schema:unrecognized_keys] hosts[8].adress: unknown key "adress" in hosts[8]; did you mean "address"? (value: adress)',
    );
  }
});
