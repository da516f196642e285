/**
 * SELinux task module: parsing getsebool and `semanage port -l`, the no-op when everything is set,
 * the commands when not, nothing where SELinux is disabled or absent; the fact command passes shellcheck.
 */
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Op } from '../../src/core/op.js';
import { FactSet, type Fact } from '../../src/facts/fact.js';
import type { HostFacts } from '../../src/facts/host.js';
import { fileTypeFact, parseGetsebool, parseSemanagePorts, portType, restorecon, selinuxBooleans, selinuxFact, selinuxPorts } from '../../src/tasks/selinux.js';

const rocky: HostFacts = { osId: 'rocky', osVersion: '9.4', family: 'rhel', hostname: 'h1', container: false };
const factsOf = (...entries: [Fact<unknown>, string, number?][]) =>
  new FactSet(new Map(entries.map(([f, stdout, code]) => [f.key, { stdout, code: code ?? 0 }])));
const cmds = (ops: Op[]) => ops.map((o) => (o.kind === 'exec' ? o.cmd.toString() : `put ${o.path}`));

/** Lines as RHEL 9's `semanage port -l -n` prints them (types and ports of selinux-policy corenetwork.te.in, c9s). */
const SEMANAGE = [
  'amqp_port_t                    tcp      15671-15672, 5671-5672',
  'amqp_port_t                    udp      5671-5672',
  'commplex_main_port_t           tcp      5000',
  'epmd_port_t                    tcp      4369',
  'http_port_t                    tcp      80, 81, 443, 488, 8008, 8009, 8443, 9000',
  'rabbitmq_port_t                tcp      25672',
  'xserver_port_t                 tcp      6000-6020',
  '',
].join('\n');

test('parse: getsebool lines and semanage port records (ranges, lists, protocols)', () => {
  assert.deepEqual([...parseGetsebool('haproxy_connect_any --> off\nnis_enabled --> on\ngarbage\n')], [
    ['haproxy_connect_any', false],
    ['nis_enabled', true],
  ]);
  const ports = parseSemanagePorts(SEMANAGE);
  assert.deepEqual(ports.filter((p) => p.type === 'amqp_port_t'), [
    { type: 'amqp_port_t', proto: 'tcp', from: 15671, to: 15672 },
    { type: 'amqp_port_t', proto: 'tcp', from: 5671, to: 5672 },
    { type: 'amqp_port_t', proto: 'udp', from: 5671, to: 5672 },
  ]);
  assert.equal(portType(ports, 'tcp', 15672), 'amqp_port_t');
  assert.equal(portType(ports, 'tcp', 8008), 'http_port_t');
  assert.equal(portType(ports, 'tcp', 6003), 'xserver_port_t');
  assert.equal(portType(ports, 'tcp', 2379), undefined);
  // The narrowest record wins, as the kernel orders them.
  assert.equal(portType([...ports, { type: 'amqp_port_t', proto: 'tcp', from: 6001, to: 6001 }], 'tcp', 6001), 'amqp_port_t');
});

test('fact: mode, booleans and ports from one command; nothing printed means unknown (plan the change, fail loudly)', () => {
  const f = selinuxFact(['haproxy_connect_any'], true);
  const s = f.parse(`mode=Enforcing\nhaproxy_connect_any --> on\n--ports\n${SEMANAGE}`, 0);
  assert.equal(s.mode, 'Enforcing');
  assert.equal(s.booleans.get('haproxy_connect_any'), true);
  assert.equal(s.ports.length, 15);
  assert.equal(f.parse('mode=absent\n', 0).mode, 'absent');
  assert.equal(f.parse('', 1).mode, 'unknown');
  // The fact command as the runner sends it is POSIX sh that shellcheck accepts.
  execFileSync('shellcheck', ['-s', 'sh', '-'], { input: `#!/bin/sh\n${f.cmd.render()}\n${fileTypeFact('/usr/libexec/keepalived').cmd.render()}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
});

test('booleans: off -> setsebool -P; already on -> no-op; disabled or absent SELinux -> no-op', () => {
  const t = selinuxBooleans({ haproxy_connect_any: true });
  const f = selinuxFact(['haproxy_connect_any'], false);
  const off = t.plan(factsOf([f, 'mode=Enforcing\nhaproxy_connect_any --> off\n']), rocky);
  assert.deepEqual(cmds(off.ops), ['setsebool -P haproxy_connect_any=on']);
  assert.deepEqual(off.changes, ['set SELinux boolean haproxy_connect_any on (was off)']);
  const on = t.plan(factsOf([f, 'mode=Enforcing\nhaproxy_connect_any --> on\n']), rocky);
  assert.deepEqual([on.changed, on.ops], [false, []]);
  for (const mode of ['Disabled', 'absent']) {
    const p = t.plan(factsOf([f, `mode=${mode}\n`]), rocky);
    assert.deepEqual([p.changed, p.ops], [false, []], mode);
  }
  // Permissive still records the setting (it takes effect when enforcing is switched on).
  assert.equal(t.plan(factsOf([f, 'mode=Permissive\nhaproxy_connect_any --> off\n']), rocky).changed, true);
});

test('ports: labeled -> no-op; unlabeled -> semanage -a; a single-port record of another type -> -m; inside a range -> -a', () => {
  const f = selinuxFact([], true);
  const facts = factsOf([f, `mode=Enforcing\n--ports\n${SEMANAGE}`]);
  const same = selinuxPorts([
    { type: 'amqp_port_t', port: 5672 },
    { type: 'rabbitmq_port_t', port: 25672 },
    { type: 'epmd_port_t', port: 4369 },
  ]).plan(facts, rocky);
  assert.deepEqual([same.changed, same.ops], [false, []]);
  const moved = selinuxPorts([
    { type: 'amqp_port_t', port: 5673 },
    { type: 'amqp_port_t', port: 5000 },
    { type: 'rabbitmq_port_t', port: 6010 },
  ]).plan(facts, rocky);
  assert.deepEqual(cmds(moved.ops), [
    'semanage port -a -t amqp_port_t -p tcp 5673',
    'semanage port -m -t amqp_port_t -p tcp 5000',
    'semanage port -a -t rabbitmq_port_t -p tcp 6010',
  ]);
  assert.deepEqual(moved.changes, [
    'label tcp/5673 amqp_port_t (was unlabeled)',
    'label tcp/5000 amqp_port_t (was commplex_main_port_t)',
    'label tcp/6010 rabbitmq_port_t (was xserver_port_t)',
  ]);
  const off = selinuxPorts([{ type: 'amqp_port_t', port: 5673 }]).plan(factsOf([f, 'mode=Disabled\n']), rocky);
  assert.deepEqual(off.ops, []);
});

test('restorecon: runs only when the type differs from the policy one', () => {
  const t = restorecon('/usr/libexec/keepalived', 'keepalived_unconfined_script_exec_t');
  const mode = selinuxFact([], false);
  const type = fileTypeFact('/usr/libexec/keepalived');
  const wrong = t.plan(factsOf([mode, 'mode=Enforcing\n'], [type, 'system_u:object_r:bin_t:s0\n']), rocky);
  assert.deepEqual(cmds(wrong.ops), ['restorecon -R /usr/libexec/keepalived']);
  const right = t.plan(factsOf([mode, 'mode=Enforcing\n'], [type, 'system_u:object_r:keepalived_unconfined_script_exec_t:s0\n']), rocky);
  assert.deepEqual(right.ops, []);
});
