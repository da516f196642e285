/**
 * What keeps a lost or hand-edited secrets file from breaking a live cluster: the rules for
 * hand-written values (file:line:col, rule, never the value), the fingerprint the hosts keep, the
 * commands that must not create secrets, and diffs of files that hold secrets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatDiagnostic, InputError } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import {
  fingerprintNames,
  generateSecretValue,
  isFernetKey,
  loadOrCreateSecrets,
  placeholderSecrets,
  requireSecrets,
  SECRET_KINDS,
  SECRET_NAMES,
  secretsFingerprint,
  validateSecretValue,
  type ClusterSecrets,
} from '../../src/inventory/secrets.js';
import { compareFingerprints, FINGERPRINT_PATH, writeFingerprintOps } from '../../src/run/fingerprint.js';
import { shownDiff } from '../../src/run/execute.js';
import { FactSet } from '../../src/facts/fact.js';
import { file, hiddenDiff, pathFact, redactLike, sha256 } from '../../src/tasks/file.js';
import { renderTracked, template } from '../../src/tasks/template.js';
import { loadInventory } from '../../src/inventory/load.js';
import { rabbitmqConfVars } from '../../src/components/rabbitmq.js';
import { runMain } from '../helpers/cli.js';
import { ROOT } from '../helpers/lab.js';
import { inTemp } from '../helpers/local.js';

/** A full set of generated secrets. */
function generated(): ClusterSecrets {
  return Object.fromEntries(SECRET_NAMES.map((n) => [n, new Secret(generateSecretValue(SECRET_KINDS[n]))])) as unknown as ClusterSecrets;
}

/** Writes a complete secrets file of generated values with `lines` replacing or adding keys. */
async function secretsFileWith(dir: string, lines: Record<string, string>): Promise<string> {
  const f = path.join(dir, 'secrets.yaml');
  const base = SECRET_NAMES.filter((n) => !(n in lines)).map((n) => `${n}: "${generateSecretValue(SECRET_KINDS[n])}"`);
  await writeFile(f, `${[...Object.entries(lines).map(([k, v]) => `${k}: ${v}`), ...base].join('\n')}\n`, { mode: 0o600 });
  return f;
}

// ---- hand-edited values ------------------------------------------------------------------------

test('hand-edited values with quotes, @, %, :, spaces or newlines are refused naming file:line:col, key and rule, never the value', () =>
  inTemp(async (dir) => {
    const bad: Record<string, string> = {
      airflowDb: `"pass'word-with-a-quote-inside"`, // line 1: a quote ends patroni.yml's strings
      postgresSuperuser: `"user@host-looking-password-1"`, // line 2: @ ends the URL's userinfo
      rabbitmqAirflow: `"percent%41-interpolated-by-configparser"`, // line 3
      airflowAdmin: `"two\\nlines-in-a-double-quoted-value"`, // line 4: YAML escape = a newline
      haproxyStats: `"has a space and a colon: here"`, // line 5
      flowerBasicAuth: `"-starts-with-a-dash-like-an-option"`, // line 6
      ftpUser: `"short"`, // line 7
      erlangCookie: `"COOKIE-WITH-DASH"`, // line 8
      airflowFernetKey: `"${'A'.repeat(44)}"`, // line 9
      patroniRestApi: '12345678901234567890', // line 10: a YAML number, not a string
    };
    const f = await secretsFileWith(dir, bad);
    const before = await readFile(f, 'utf8');
    const err = await loadOrCreateSecrets(dir).then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof InputError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /secrets file .*secrets\.yaml: 10 value\(s\) refused/);
    const lines = err.diagnostics.map(formatDiagnostic);
    const expect: [string, number, number, string][] = [
      ['airflowDb', 1, 12, 'secrets:charset'],
      ['postgresSuperuser', 2, 20, 'secrets:charset'],
      ['rabbitmqAirflow', 3, 18, 'secrets:charset'],
      ['airflowAdmin', 4, 15, 'secrets:charset'],
      ['haproxyStats', 5, 15, 'secrets:charset'],
      ['flowerBasicAuth', 6, 18, 'secrets:charset'],
      ['ftpUser', 7, 10, 'secrets:length'],
      ['erlangCookie', 8, 15, 'secrets:erlang-cookie'],
      ['airflowFernetKey', 9, 19, 'secrets:fernet-key'],
      ['patroniRestApi', 10, 17, 'secrets:string'],
    ];
    for (const [key, line, col, rule] of expect) {
      assert.ok(lines.some((l) => l === `${f}:${line}:${col}: error [${rule}] ${key}: ${err.diagnostics.find((d) => d.path === key)?.message}`), `${key}: ${lines.join('\n')}`);
    }
    const shown = `${err.message}\n${lines.join('\n')}`;
    for (const v of ['pass\'word', 'user@host', 'percent%41', 'lines-in-a', 'has a space', 'starts-with-a-dash', 'short"', 'COOKIE-WITH', 'AAAAAAAA', '1234567890']) {
      assert.ok(!shown.includes(v), `a value was shown: ${v}`);
    }
    // Nothing was changed or added.
    assert.equal(await readFile(f, 'utf8'), before);
  }));

test('generated values and the render placeholders pass the rules; the rules are per kind', () => {
  for (let i = 0; i < 20; i++) for (const n of SECRET_NAMES) assert.equal(validateSecretValue(n, generateSecretValue(SECRET_KINDS[n])), undefined, n);
  const ph = placeholderSecrets();
  for (const n of SECRET_NAMES) {
    assert.equal(validateSecretValue(n, ph[n].reveal()), undefined, n);
    assert.match(ph[n].reveal(), /PLACEHOLDER/i, n);
  }
  assert.ok(isFernetKey(ph.airflowFernetKey.reveal()));
  assert.equal(validateSecretValue('airflowDb', 'Only.unreserved_chars~are-ok'), undefined);
  assert.equal(validateSecretValue('airflowDb', 'fifteen-chars-x')?.rule, 'secrets:length');
  assert.equal(validateSecretValue('erlangCookie', 'A'.repeat(256))?.rule, 'secrets:erlang-cookie');
  assert.equal(validateSecretValue('erlangCookie', 'A'.repeat(255)), undefined);
});

// ---- no command but a changing one creates secrets ---------------------------------------------

test('requireSecrets (plan) refuses a missing file, names the command that creates it, and creates nothing', () =>
  inTemp(async (dir) => {
    const stateDir = path.join(dir, 'site.state');
    await assert.rejects(requireSecrets(stateDir, 'airflow-ha bootstrap -i site.yaml'), (e: unknown) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /secrets file .*site\.state\/secrets\.yaml does not exist; `airflow-ha bootstrap -i site\.yaml` creates it/);
      assert.match(e.message, /restore the file from your backup/);
      return true;
    });
    await assert.rejects(stat(stateDir), { code: 'ENOENT' });
    const { secrets } = await loadOrCreateSecrets(stateDir);
    const again = await requireSecrets(stateDir, 'x');
    for (const n of SECRET_NAMES) assert.equal(again[n].reveal(), secrets[n].reveal());
  }));

test('plan without a secrets file: exit 2 before connecting, naming bootstrap; no secrets file appears', () =>
  inTemp(async (dir) => {
    const inv = path.join(dir, 'one.yaml');
    // 127.0.0.2:1 — nothing listens; the old code created the secrets file and then failed to connect (exit 3).
    await writeFile(inv, ['cluster:', '  name: plan-test', '  network: 127.0.0.0/24', 'ssh:', '  port: 1', 'hosts:', '  - { name: h1, address: 127.0.0.2, roles: [etcd] }', ''].join('\n'));
    const r = await runMain(['plan', '-i', inv, '--playbook', 'demo']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /one\.state\/secrets\.yaml does not exist; `airflow-ha bootstrap -i .*one\.yaml` creates it/);
    assert.deepEqual(await readdir(dir), ['one.yaml']);
  }));

test('render without a secrets file: placeholders, a note saying so, and no secrets file', () =>
  inTemp(async (dir) => {
    await copyFile(path.join(ROOT, 'inventory', 'seed-ha.yaml'), path.join(dir, 'seed-ha.yaml'));
    const r = await runMain(['render', '-i', 'seed-ha.yaml', '--out', 'out', '--playbook', 'etcd-patroni'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /note: no secrets file \(.*seed-ha\.state\/secrets\.yaml\): rendered with placeholders \(PLACEHOLDER-<name>\)/);
    await assert.rejects(stat(path.join(dir, 'seed-ha.state', 'secrets.yaml')), { code: 'ENOENT' });
    const patroni = await readFile(path.join(dir, 'out', 'sql1', 'etc', 'patroni', 'config.yml'), 'utf8');
    assert.match(patroni, /password: 'PLACEHOLDER-postgresSuperuser'/);
  }));

// ---- the fingerprint ---------------------------------------------------------------------------

test('fingerprint: one line per set of secrets; any one value or the cluster changes it; no value in it', () => {
  const s = generated();
  const fp = secretsFingerprint(s, 'prod');
  assert.match(fp, /^airflow-ha-secrets-fingerprint v1 names=[A-Za-z,]+ hmac-sha256=[0-9a-f]{64}$/);
  assert.deepEqual(fingerprintNames(fp), [...SECRET_NAMES].sort());
  assert.equal(secretsFingerprint(s, 'prod'), fp, 'deterministic');
  assert.notEqual(secretsFingerprint(s, 'staging'), fp, 'salted by the cluster');
  for (const n of SECRET_NAMES) {
    assert.ok(!fp.includes(s[n].reveal()), `${n} appears in the fingerprint`);
    const other = { ...s, [n]: new Secret(generateSecretValue(SECRET_KINDS[n])) } as ClusterSecrets;
    assert.notEqual(secretsFingerprint(other, 'prod'), fp, `a new ${n} changes the fingerprint`);
  }
  // Moving a character from one value to the next gives another message (values are length-prefixed).
  const a = { ...s, airflowDb: new Secret('abcdefghijklmnopq'), airflowAdmin: new Secret('rstuvwxyz0123456') } as ClusterSecrets;
  const b = { ...s, airflowDb: new Secret('abcdefghijklmnop'), airflowAdmin: new Secret('qrstuvwxyz0123456') } as ClusterSecrets;
  assert.notEqual(secretsFingerprint(a, 'prod'), secretsFingerprint(b, 'prod'));
});

test('compareFingerprints: same, absent, different; a key added later does not count; foreign lines differ', () => {
  const s = generated();
  const older = SECRET_NAMES.filter((n) => n !== 'ftpUser');
  const other = generated();
  const states = compareFingerprints(
    s,
    'prod',
    new Map([
      ['a', secretsFingerprint(s, 'prod')],
      ['b', undefined],
      ['c', secretsFingerprint(s, 'prod', older)],
      ['d', secretsFingerprint(other, 'prod')],
      ['e', secretsFingerprint(s, 'another-cluster')],
      ['f', 'airflow-ha-secrets-fingerprint v1 names=airflowDb,notASecret hmac-sha256=' + '0'.repeat(64)],
      ['g', 'garbage'],
      ['h', ''],
    ]),
  );
  assert.deepEqual(Object.fromEntries(states), { a: 'same', b: 'absent', c: 'same', d: 'different', e: 'different', f: 'different', g: 'different', h: 'absent' });
  // With the current fingerprint given, the same answers.
  const given = compareFingerprints(s, 'prod', new Map([['a', secretsFingerprint(s, 'prod')], ['d', secretsFingerprint(other, 'prod')]]), secretsFingerprint(s, 'prod'));
  assert.deepEqual(Object.fromEntries(given), { a: 'same', d: 'different' });
});

test('the fingerprint is written root:root 0600 under /etc/airflow-ha', () => {
  const ops = writeFingerprintOps('line');
  const put = ops.find((o) => o.kind === 'put');
  assert.ok(put && put.kind === 'put');
  assert.deepEqual([put.path, put.mode, put.owner, put.group, put.content.toString()], [FINGERPRINT_PATH, '0600', 'root', 'root', 'line\n']);
  assert.equal(FINGERPRINT_PATH, '/etc/airflow-ha/secrets.fingerprint');
});

// ---- diffs of files that hold secrets ----------------------------------------------------------

/** Plans `task` against a host whose file holds `before`. */
function planAgainst(spec: Parameters<typeof file>[0], before: string) {
  const task = file(spec);
  const content = Buffer.from(typeof spec.content === 'string' ? spec.content : spec.content.toString());
  const fact = pathFact(spec.path, sha256(content));
  const out = `present|644|root|root|regular file|${sha256(before)}\n${Buffer.from(before).toString('base64')}`;
  return task.plan(new FactSet(new Map([[fact.key, { stdout: out, code: 0 }]])), undefined as never);
}

test('a template that reveals a secret: its diff compares redacted renderings, so an old value on the host never shows', async () => {
  const vars = (stats: unknown, maxconn = 10) => ({ cluster: { name: 'c' }, maxconn, timeout_client: '1s', host: { name: 'h', address: '10.0.0.1' }, ports: { haproxyStats: 8404 }, stats_password: stats });
  const pw = new Secret('current-password-0123456789');
  const tracked = renderTracked('demo/haproxy.cfg.njk', vars(pw));
  assert.equal(tracked.holdsSecrets, true);
  assert.match(tracked.text, /stats auth admin:current-password-0123456789$/m);
  assert.match(tracked.redacted ?? '', /stats auth admin:\*\*\*$/m);
  // A template that reveals nothing, rendered next: the flags are per rendering.
  const { inventory } = await loadInventory(path.join(ROOT, 'inventory', 'seed-ha.yaml'));
  assert.deepEqual(Object.keys(renderTracked('rabbitmq/rabbitmq.conf.njk', rabbitmqConfVars(inventory))), ['text', 'holdsSecrets']);

  // On the host: the file as an older run wrote it, with another maxconn and an old password.
  const oldText = renderTracked('demo/haproxy.cfg.njk', vars(new Secret('OLD-password-0123456789'), 99)).text;
  const t = template({ path: '/etc/haproxy/haproxy.cfg', template: 'demo/haproxy.cfg.njk', vars: vars(pw) });
  const content = Buffer.from(t.files?.(undefined as never)[0]?.content ?? '');
  const fact = pathFact('/etc/haproxy/haproxy.cfg', sha256(content));
  const out = `present|644|root|root|regular file|${sha256(oldText)}\n${Buffer.from(oldText).toString('base64')}`;
  const plan = t.plan(new FactSet(new Map([[fact.key, { stdout: out, code: 0 }]])), undefined as never);
  assert.equal(plan.diffRedacted, true);
  const changed = (plan.diff ?? '').split('\n').filter((l) => /^[-+][^-+]/.test(l));
  assert.deepEqual(changed, ['-    maxconn 99', '+    maxconn 10'], 'only the real change; the password line is redacted alike on both sides');
  assert.ok(!(plan.diff ?? '').includes('OLD-password') && !(plan.diff ?? '').includes(pw.reveal()));
});

test('redactLike: exact lines keep their other parts; a line with the same key is cut after it; other lines stay', () => {
  const redacted = [
    'sql_alchemy_conn = postgresql+psycopg2://airflow:***@10.0.0.5:5000/airflow',
    'broker_url = amqp://airflow:***@n1/airflow;amqp://airflow:***@n2/airflow',
    '    password: \'***\'',
    'plain = 1',
  ].join('\n');
  const host = [
    'sql_alchemy_conn = postgresql+psycopg2://airflow:OLD1@10.0.0.5:5000/airflow',
    'broker_url = amqp://airflow:OLD2@n1/airflow;amqp://airflow:OLD2@n2/airflow',
    'sql_alchemy_conn = postgresql+psycopg2://airflow:OLD3@10.0.0.9:5000/airflow',
    '  password: \'OLD4\'',
    'plain = 2',
  ].join('\n');
  assert.equal(
    redactLike(host, redacted),
    [
      'sql_alchemy_conn = postgresql+psycopg2://airflow:***@10.0.0.5:5000/airflow',
      'broker_url = amqp://airflow:***@n1/airflow;amqp://airflow:***@n2/airflow',
      'sql_alchemy_conn = postgresql+psycopg2://airflow:***',
      '  password: \'***',
      'plain = 2',
    ].join('\n'),
  );
  assert.equal(redactLike('a\nb', 'no secret here'), 'a\nb');
});

test('a file that holds secrets without a redacted rendering (cookie, password file, hashes) shows only a count', () => {
  const plan = planAgainst({ path: '/etc/x.conf', content: 'a=1\npassword=new-value-123456\n', holdsSecrets: true }, 'a=1\npassword=OLD-value-123456\n');
  assert.equal(plan.diff, '/etc/x.conf: content hidden: holds secrets; 2 line(s) changed\n');
  assert.equal(plan.diffRedacted, true);
  assert.equal(hiddenDiff('/x', undefined, Buffer.from('one\ntwo\n')), '/x: content hidden: holds secrets; 2 line(s) changed\n');
  // Without the flag, the ordinary diff (the old line visible).
  assert.match(planAgainst({ path: '/etc/x.conf', content: 'a=2\n' }, 'a=1\n').diff ?? '', /^-a=1$/m);
});

test('the runner hides the diff of any write whose new content holds a current secret (a file task without the flag)', () => {
  const current = new Secret('current-password-0123456789');
  const mask = (t: string) => t.split(current.reveal()).join('***');
  const before = 'password=OLD-password-0123456789\n';
  const plan = planAgainst({ path: '/etc/y.conf', content: `password=${current.reveal()}\n` }, before);
  assert.match(plan.diff ?? '', /OLD-password/, 'the task itself does not know');
  assert.equal(shownDiff(plan, [current], mask), '/etc/y.conf: content hidden: holds secrets\n');
  const plain = planAgainst({ path: '/etc/z.conf', content: 'x=2\n' }, 'x=1\n');
  assert.equal(shownDiff(plain, [current], mask), plain.diff);
});
