/**
 * Config injection through the inventory, refused in three places: the inventory's named patterns
 * (through `validate --json`, with file:line:col and the rule), the template guard behind them
 * (a value with a control character never reaches a rendered config), and `render --out DIR`,
 * which writes nothing outside DIR.
 */
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { haproxyConfig } from '../../src/components/haproxy.js';
import { keepalivedConfig } from '../../src/components/keepalived.js';
import { renderFiles, renderTarget } from '../../src/cli/render.js';
import { Secret } from '../../src/core/secret.js';
import type { Host, Inventory } from '../../src/inventory/schema.js';
import { renderTemplate, TemplateValueError } from '../../src/tasks/template.js';
import { haproxy } from '../../playbooks/haproxy.js';
import { runMain } from '../helpers/cli.js';
import { fixedSecrets, seedInventory } from '../helpers/golden.js';
import { ROOT } from '../helpers/lab.js';

interface Finding {
  rule: string;
  path: string;
  message: string;
  pos: { file: string; line: number; col: number };
}

test('validate --json refuses a newline in vars.haproxyTimeout with its rule and file:line:col (exit 2)', async () => {
  const file = path.join(ROOT, 'test/fixtures/inventories/bad/inject-haproxy-timeout-newline.yaml');
  const r = await runMain(['validate', '-i', file, '--json']);
  assert.equal(r.code, 2, r.stderr);
  const doc = JSON.parse(r.stdout) as { ok: boolean; errors: Finding[] };
  assert.equal(doc.ok, false);
  assert.deepEqual(
    doc.errors.map((e) => ({ rule: e.rule, path: e.path, at: `${path.basename(e.pos.file)}:${e.pos.line}:${e.pos.col}` })),
    [{ rule: 'pattern:haproxy-time', path: 'hosts[0].vars.haproxyTimeout', at: 'inject-haproxy-timeout-newline.yaml:10:111' }],
  );
  assert.match(doc.errors[0]!.message, /holds U\+000A: an HAProxy time/);
});

/** `inv` with the host `name` changed by `change` (the schema is bypassed: this is what reaches the templates). */
function withHost(inv: Inventory, name: string, change: (h: Host) => Host): { inv: Inventory; host: Host } {
  const hosts = inv.hosts.map((h) => (h.name === name ? change(h) : h));
  return { inv: { ...inv, hosts }, host: hosts.find((h) => h.name === name)! };
}

test('template guard: a newline in a value makes rendering fail with TemplateValueError naming the template and the variable', async () => {
  const seed = await seedInventory();
  const { inv, host } = withHost(seed, 'airflow', (h) => ({ ...h, vars: { haproxyTimeout: '30m\nlisten evil\n  bind :2222' } }));
  assert.throws(
    () => haproxyConfig(inv, host, fixedSecrets, 'debian'),
    (e: unknown) => e instanceof TemplateValueError && e.template === 'haproxy/haproxy.cfg.njk' && e.variable === 'timeout' && e.char === 'U+000A',
  );
  // keepalived's interface comes from the inventory or from a fact (`ip` output): either way guarded.
  assert.throws(() => keepalivedConfig(seed, host, 'eth0\n    notify_master "/bin/sh -c id"'), /template keepalived\/keepalived\.conf\.njk: variable instances\[0\]\.interface holds U\+000A/);
  // Any control character, nested anywhere, Secrets included (whose value is never shown).
  assert.throws(() => renderTemplate('repos/erlang.pref.njk', { cluster: 'c', version: '1:26.2.5\r' }), /variable version holds U\+000D/);
  assert.throws(
    () => renderTemplate('demo/haproxy.cfg.njk', { a: [{ b: new Secret('pass\0word') }] }),
    (e: unknown) => e instanceof TemplateValueError && e.variable === 'a[0].b' && e.char === 'U+0000' && !e.message.includes('pass'),
  );
});

test('render names the host whose template refused a value', async () => {
  const seed = await seedInventory();
  const { inv } = withHost(seed, 'haproxy2', (h) => ({ ...h, vars: { haproxyTimeout: '30m\nlisten evil' } }));
  assert.throws(() => renderFiles(haproxy, inv, fixedSecrets, 'debian'), /^Error: host haproxy2, step .*: template haproxy\/haproxy\.cfg\.njk: variable timeout holds U\+000A/);
});

test('render --out DIR: a path with a .. segment, or one that resolves outside DIR, is refused', () => {
  const out = path.resolve('/tmp/out');
  assert.equal(renderTarget('/tmp/out', 'lb1', '/etc/haproxy/haproxy.cfg'), path.join(out, 'lb1/etc/haproxy/haproxy.cfg'));
  assert.equal(renderTarget('/tmp/out/', 'lb1', '/etc/a..b/x..'), path.join(out, 'lb1/etc/a..b/x..'), '.. inside a name is not a segment');
  for (const [host, file] of [
    ['lb1', '/../../etc/cron.d/x'],
    ['lb1', '/opt/airflow/../../../../root/.ssh/authorized_keys'],
    ['lb1', 'etc/relative'],
    ['..', '/etc/x'],
    ['../..', '/etc/x'],
    ['a/b', '/x'],
  ]) {
    assert.throws(() => renderTarget('/tmp/out', host!, file!), /render: refusing to write/, `${host}:${file}`);
  }
});
