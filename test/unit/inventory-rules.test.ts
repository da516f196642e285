/**
 * The rules of what breaks a cluster, beyond the one-finding-per-file corpus: where each rule stops
 * (thresholds, exceptions), the component version table, PostgreSQL parameter names, the local
 * identity file, the decoding of inventory files, and keepalived's hosts checked against what the
 * bootstrap playbook renders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { playbooks } from '../../playbooks/index.js';
import { renderFiles } from '../../src/cli/render.js';
import { InputError, type Diagnostic } from '../../src/core/errors.js';
import { decodeInventory, LAB_KEY_FILE, loadInventory, parseInventory, type LoadOptions } from '../../src/inventory/load.js';
import { POSTGRESQL_15_PARAMETERS } from '../../src/inventory/data/postgresql-15-parameters.js';
import { runsKeepalived } from '../../src/inventory/rules.js';
import { describeSupported, isSupportedVersion, POSTGRESQL_MAJORS } from '../../src/inventory/versions.js';
import { patroniPaths } from '../../src/components/patroni.js';
import { fixedOperator, fixedSecrets } from '../helpers/golden.js';
import { runMain } from '../helpers/cli.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const minimal = readFileSync(path.join(repo, 'test/fixtures/inventories/good/minimal.yaml'), 'utf8');

/** Every finding of `text` (errors and warnings), whether or not it loads. */
function findings(text: string, opts: LoadOptions = {}): Diagnostic[] {
  try {
    return parseInventory(text, 'x.yaml', opts).warnings;
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return [...e.diagnostics];
  }
}

const rules = (text: string, opts?: LoadOptions) => findings(text, opts).map((d) => `${d.severity} ${d.rule}`);
const withCluster = (line: string) => minimal.replace('  network: 10.20.0.0/24\n', `  network: 10.20.0.0/24\n${line}\n`);

test('network:too-broad warns below /16 only', () => {
  assert.ok(!rules(minimal.replace('10.20.0.0/24', '10.20.0.0/16')).includes('warning network:too-broad'));
  assert.ok(rules(minimal.replace('10.20.0.0/24', '10.20.0.0/15')).includes('warning network:too-broad'));
  const d = findings(minimal.replace('10.20.0.0/24', '0.0.0.0/0')).find((f) => f.rule === 'network:too-broad');
  assert.match(d!.message, /\/0 spans 4,294,967,296 addresses/);
});

test('version table: series prefixes end at a dot, an epoch is ignored, PostgreSQL is an exact major', () => {
  assert.ok(isSupportedVersion('rabbitmq', '3.13.7'));
  assert.ok(isSupportedVersion('rabbitmq', '3.13'));
  assert.ok(!isSupportedVersion('rabbitmq', '3.1'), '3.1 is not 3.13');
  assert.ok(!isSupportedVersion('rabbitmq', '3.130'));
  assert.ok(isSupportedVersion('erlang', '1:26.2.5-1'));
  assert.ok(isSupportedVersion('etcd', '3.5.17-1.el9'));
  assert.ok(isSupportedVersion('patroni', '4.0.4'));
  assert.ok(!isSupportedVersion('patroni', '40.1'));
  assert.ok(isSupportedVersion('postgresql', '15'));
  assert.ok(!isSupportedVersion('postgresql', '15.4'), 'the major only: it is part of package names and paths');
  assert.equal(describeSupported('etcd'), '3.4.x, 3.5.x, 3.6.x');
  assert.equal(describeSupported('postgresql'), '15');
  // The seed's pins are all supported.
  assert.deepEqual(rules(withCluster('  versions: { postgresql: "15", patroni: "4.0.4", etcd: "3.5.17", rabbitmq: "3.13.7", erlang: "26.2.5", python: "3.11" }')).filter((r) => r.includes('version:')), []);
});

test('a PostgreSQL major outside the table never reaches a path', () => {
  assert.deepEqual(patroniPaths('debian', '15').binDir, '/usr/lib/postgresql/15/bin');
  assert.throws(() => patroniPaths('rhel', '16/../../etc'), /PostgreSQL major "16\/..\/..\/etc" is not supported \(15\)/);
});

test('PostgreSQL parameter names: every supported major has its list; case-insensitive; extension.name passes', () => {
  assert.deepEqual(POSTGRESQL_MAJORS, ['15']);
  assert.ok(Object.keys(POSTGRESQL_15_PARAMETERS).length > 300);
  assert.equal(POSTGRESQL_15_PARAMETERS['shared_buffers'], 'postmaster');
  assert.equal(POSTGRESQL_15_PARAMETERS['work_mem'], 'user');
  const params = (body: string) => withCluster(`  postgresql:\n    parameters: { ${body} }`);
  assert.deepEqual(rules(params('work_mem: 16MB, datestyle: "iso, mdy", pg_stat_statements.max: 10000, auto_explain.log_min_duration: 250ms')).filter((r) => r.startsWith('error')), []);
  const typo = findings(params('wrok_mem: 16MB')).filter((d) => d.severity === 'error');
  assert.deepEqual(typo.map((d) => [d.rule, d.message.split(';')[1]?.trim().split(' (')[0]]), [['postgresql:unknown-parameter', 'did you mean "work_mem"?']]);
  const nothingClose = findings(params('frobnicate_everything: 1')).find((d) => d.rule === 'postgresql:unknown-parameter');
  assert.ok(nothingClose && !nothingClose.message.includes('did you mean'), nothingClose?.message);
  // A parameter Patroni owns is reported once, by its own rule; wal_keep_segments (gone since 13) too.
  assert.deepEqual(rules(params('wal_keep_segments: 8')).filter((r) => r.startsWith('error')), ['error postgresql:patroni-parameter']);
  // An unsupported major: its version error only, no guess at its parameters.
  assert.deepEqual(rules(withCluster('  versions: { postgresql: "16" }\n  postgresql:\n    parameters: { io_combine_limit: 32 }')).filter((r) => r.startsWith('error')), ['error version:postgresql']);
});

test('single points of failure: none for two hosts of a role, none for roles the seed runs once', () => {
  const twoDagProcessors = minimal.replace('roles: [rabbitmq] }', 'roles: [rabbitmq, dag_processor] }').replace('address: 10.20.0.32, roles: [rabbitmq] }', 'address: 10.20.0.32, roles: [rabbitmq, dag_processor] }');
  assert.deepEqual(rules(twoDagProcessors).filter((r) => r.includes('spof')), []);
  // One worker, one Flower host: the seed's own layout.
  assert.deepEqual(rules(minimal).filter((r) => r.includes('spof')), []);
  // No haproxy VIP but no Airflow host either: no database path to warn about.
  const dbOnly = ['cluster:', '  name: db', '  network: 10.1.0.0/24', 'hosts:', ...[1, 2, 3].map((i) => `  - { name: db${i}, address: 10.1.0.${i + 10}, roles: [postgresql, etcd, haproxy] }`), ''].join('\n');
  assert.ok(!rules(dbOnly).includes('warning spof:database-path'));
  assert.ok(rules(dbOnly + '  - { name: s1, address: 10.1.0.21, roles: [scheduler] }\n').includes('warning spof:database-path'));
});

test('vip:keepalived: a VIP only some of whose hosts run keepalived names those', () => {
  const text = minimal
    .replace('routerId: 51 }\n', 'routerId: 51 }\n    - { name: ui-vip, address: 10.20.0.102, role: webserver, routerId: 53 }\n')
    .replace('roles: [worker]', 'roles: [worker, webserver]');
  const d = findings(text).filter((f) => f.rule === 'vip:keepalived');
  assert.equal(d.length, 1);
  assert.match(d[0]!.message, /^worker1 has role webserver but runs no keepalived, so it never holds VIP ui-vip/);
});

test('runsKeepalived says which hosts the bootstrap playbook gives a keepalived.conf', async () => {
  const seed = (await loadInventory(path.join(repo, 'inventory/seed-ha.yaml'))).inventory;
  const lab = (await loadInventory(path.join(repo, 'inventory/lab.yaml'))).inventory;
  // Rendered without the lab's wheelhouse (filled by scripts/lab-wheelhouse.sh): keepalived does not depend on it.
  lab.cluster.airflow.install = { source: 'pypi' };
  const noVip = structuredClone(seed);
  noVip.cluster.vips = noVip.cluster.vips.filter((v) => v.role !== 'haproxy');
  for (const [name, inv] of [['seed', seed], ['lab', lab], ['seed without its haproxy VIP', noVip]] as const) {
    const rendered = new Set(renderFiles(playbooks.bootstrap, inv, fixedSecrets, 'debian', fixedOperator).filter((f) => f.path === '/etc/keepalived/keepalived.conf').map((f) => f.host));
    const predicted = new Set(inv.hosts.filter((h) => runsKeepalived(inv, h)).map((h) => h.name));
    assert.deepEqual([...predicted].sort(), [...rendered].sort(), name);
    assert.ok(name !== 'seed' || rendered.size === 4, 'the seed: two haproxy and two nfs hosts');
  }
});

test('ssh:jump-port: 1-65535 at the top level and per host', () => {
  assert.ok(!rules(minimal.replace('  user: deploy\n', '  user: deploy\n  jump: ops@10.20.0.5:65535\n')).includes('error ssh:jump-port'));
  const zero = findings(minimal.replace('    queues: [default]\n', '    queues: [default]\n    ssh: { jump: "10.20.0.5:0" }\n')).filter((d) => d.rule === 'ssh:jump-port');
  assert.deepEqual(zero.map((d) => d.path), ['hosts[8].ssh.jump']);
});

test('ssh:identity-file: ~ and relative paths resolved, a directory refused, the lab key exempt', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ah-idfile-'));
  try {
    const home = path.join(dir, 'home');
    await mkdir(path.join(home, '.ssh'), { recursive: true });
    await writeFile(path.join(home, '.ssh', 'id_ed25519'), 'key\n', { mode: 0o600 });
    await mkdir(path.join(dir, 'keys'));
    const files = { dir, home };
    const at = (file: string, extra = '') => findings(minimal.replace('  user: deploy\n', `  user: deploy\n  identityFile: ${file}\n`) + extra, { localFiles: files }).filter((d) => d.rule === 'ssh:identity-file');
    assert.deepEqual(at('~/.ssh/id_ed25519'), []);
    assert.deepEqual(at('home/.ssh/id_ed25519'), [], 'relative to the inventory folder');
    assert.match(at('keys')[0]!.message, new RegExp(`identity file ${dir}/keys is a directory, not a key file on this machine`));
    assert.match(at('~/.ssh/id_rsa')[0]!.message, new RegExp(`identity file ${home}/.ssh/id_rsa does not exist`));
    // The lab's key is created by `lab up`: not reported with a lab section, reported without one.
    const labKey = `x.state/${LAB_KEY_FILE}`;
    assert.deepEqual(at(labKey, 'lab: { bridge: br-x, address: 10.20.0.1 }\n'), []);
    assert.equal(at(labKey).length, 1);
    // A per-host identity file is checked too, at its own line.
    const perHost = findings(minimal.replace('    queues: [default]\n', '    queues: [default]\n    ssh: { identityFile: /nonexistent/key }\n'), { localFiles: files }).filter((d) => d.rule === 'ssh:identity-file');
    assert.deepEqual(perHost.map((d) => [d.path, d.pos.line]), [['hosts[8].ssh.identityFile', 22]]);
    // Without localFiles (parseInventory's default) nothing local is looked at.
    assert.deepEqual(findings(minimal.replace('  user: deploy\n', '  user: deploy\n  identityFile: /nonexistent/key\n')).filter((d) => d.rule === 'ssh:identity-file'), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('decodeInventory: UTF-8 with or without its byte order mark; a real U+FFFD is text; UTF-32 is named', () => {
  assert.equal(decodeInventory(Buffer.from('a: 1\n'), 'x.yaml'), 'a: 1\n');
  assert.equal(parseInventory(decodeInventory(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(minimal)]), 'x.yaml'), 'x.yaml').inventory.hosts.length, 9);
  assert.equal(decodeInventory(Buffer.from('# \uFFFD\na: 1\n'), 'x.yaml'), '# \uFFFD\na: 1\n');
  const bad = (bytes: Buffer) => {
    try {
      decodeInventory(bytes, 'x.yaml');
    } catch (e) {
      assert.ok(e instanceof InputError);
      assert.equal(e.exitCode, 2);
      const d = e.diagnostics[0]!;
      return `${d.pos.line}:${d.pos.col} ${d.rule} ${d.message}`;
    }
    return 'decoded';
  };
  assert.equal(bad(Buffer.from([0xff, 0xfe, 0, 0, 0x61, 0, 0, 0])), '1:1 file:encoding the file is UTF-32 (byte order mark FF FE 00 00), not UTF-8: save it as UTF-8');
  assert.equal(bad(Buffer.from([0xfe, 0xff, 0, 0x61])), '1:1 file:encoding the file is UTF-16 (byte order mark FE FF), not UTF-8: save it as UTF-8');
  assert.equal(bad(Buffer.concat([Buffer.from('# \uFFFD ok\nname: caf'), Buffer.from([0xe9]), Buffer.from('\n')])), '2:10 file:encoding byte 0xE9 is not UTF-8 (a file saved as Latin-1 or Windows-1252?): save it as UTF-8');
  assert.match(bad(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00])), /^1:8 file:binary /);
});

test('validate --json prints one JSON document for every kind of bad file (exit 2)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ah-validate-'));
  try {
    await writeFile(path.join(dir, 'empty.yaml'), '');
    await writeFile(path.join(dir, 'comments.yaml'), '# nothing but a comment\n');
    await mkdir(path.join(dir, 'folder.yaml'));
    const fixtures = path.join(repo, 'test/fixtures/inventories/bad');
    const cases: [string, RegExp][] = [
      [path.join(dir, 'missing.yaml'), /cannot read inventory .*missing\.yaml: no such file/],
      [path.join(dir, 'folder.yaml'), /cannot read inventory .*folder\.yaml: it is a directory, not an inventory file/],
      [path.join(dir, 'empty.yaml'), /has 1 error\(s\)/],
      [path.join(dir, 'comments.yaml'), /has 1 error\(s\)/],
      [path.join(fixtures, 'file-binary-nul.yaml'), /has 1 error\(s\)/],
      [path.join(fixtures, 'file-invalid-utf8.yaml'), /has 1 error\(s\)/],
      [path.join(fixtures, 'file-utf16-bom.yaml'), /has 1 error\(s\)/],
    ];
    const seen: string[] = [];
    for (const [file, message] of cases) {
      const r = await runMain(['validate', '-i', file, '--json']);
      assert.equal(r.code, 2, file);
      assert.equal(r.stderr, '', file);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 1, 'one document');
      const doc = JSON.parse(lines[0]!) as { ok: boolean; file: string; message: string; errors: { rule: string; message: string }[] };
      assert.equal(doc.ok, false);
      assert.equal(doc.file, file);
      assert.match(doc.message, message, file);
      seen.push(doc.errors.map((e) => `${e.rule}: ${e.message}`).join() || '(message only)');
    }
    assert.deepEqual(seen, [
      '(message only)',
      '(message only)',
      'schema:invalid_type: the inventory is empty: expected a mapping with cluster, ssh and hosts',
      'schema:invalid_type: the inventory is empty: expected a mapping with cluster, ssh and hosts',
      'file:binary: the file holds a NUL byte: it is a binary file, not a YAML inventory',
      'file:encoding: byte 0xE9 is not UTF-8 (a file saved as Latin-1 or Windows-1252?): save it as UTF-8',
      'file:encoding: the file is UTF-16 (byte order mark FF FE), not UTF-8: save it as UTF-8',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('validate names the bootstrap step a missing role leaves without hosts; --playbook etcd-patroni does not need it', async () => {
  const file = path.join(repo, 'test/fixtures/inventories/bad/required-role-worker.yaml');
  const r = await runMain(['validate', '-i', file]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\[role:required\] hosts: no host has role worker, which playbook bootstrap needs \(step "airflow workers"/);
  const db = await runMain(['validate', '-i', file, '--playbook', 'etcd-patroni']);
  assert.equal(db.code, 0, db.stderr);
});

test('an inventory of the data plane alone bootstraps the data plane: no Airflow role is required, a warning says so', async () => {
  const { parse, stringify } = await import('yaml');
  const src = parse(readFileSync(path.join(repo, 'test/fixtures/inventories/bad/required-role-worker.yaml'), 'utf8')) as { hosts: Array<{ roles: string[] }> };
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ah-dataplane-'));
  try {
    const file = path.join(dir, 'dataplane.yaml');
    src.hosts = src.hosts.map((h) => ({ ...h, roles: h.roles.filter((r) => ['etcd', 'postgresql', 'haproxy', 'rabbitmq'].includes(r)) })).filter((h) => h.roles.length > 0);
    await writeFile(file, stringify(src));
    const r = await runMain(['validate', '-i', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /\[airflow:none\] hosts: no host has an Airflow role .*: playbook bootstrap sets up the data plane only; give hosts the roles scheduler and worker/);
    assert.doesNotMatch(r.stderr, /role:required/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
