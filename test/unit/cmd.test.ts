import { execFileSync } from 'node:child_process';
import { inspect } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Cmd, quote, raw, sh } from '../../src/core/cmd.js';
import { maskSecrets, Secret } from '../../src/core/secret.js';

/** Runs a command with /bin/sh and returns what it printed. */
function run(cmd: Cmd): string {
  return execFileSync('/bin/sh', ['-c', cmd.render()], { encoding: 'utf8' });
}

const nasty = [
  '',
  'plain',
  'with space',
  "it's",
  'double "quotes"',
  '$HOME and `date` and $(id)',
  'back\\slash',
  'new\nline',
  'tab\there',
  '*?[glob]',
  '; rm -rf / #',
  '-n',
  'ünïcødé ✓',
  "'''",
  '!history',
];

test('quote: every value round-trips through /bin/sh as exactly one word', () => {
  for (const v of nasty) {
    const out = run(sh`printf '%s|' ${v}`);
    assert.equal(out, `${v}|`, `value ${JSON.stringify(v)}`);
  }
});

test('arrays become one word per element', () => {
  const out = run(sh`printf '<%s>' ${nasty}`);
  assert.equal(out, nasty.map((v) => `<${v}>`).join(''));
});

test('nested Cmd keeps its quoting; asWord makes a whole command one word for sh -c', () => {
  const inner = sh`printf '%s' ${"a b'c"}`;
  assert.equal(run(sh`${inner}; printf '!'`), "a b'c!");
  assert.equal(run(sh`sh -c ${inner.asWord()}`), "a b'c");
  // Twice nested: sudo-style wrapping of an already wrapped command.
  assert.equal(run(sh`sh -c ${sh`sh -c ${inner.asWord()}`.asWord()}`), "a b'c");
});

test('safe words are left bare; others single-quoted', () => {
  assert.equal(quote('/etc/haproxy/haproxy.cfg'), '/etc/haproxy/haproxy.cfg');
  assert.equal(quote('a b'), "'a b'");
  assert.equal(quote(''), "''");
  assert.equal(quote("it's"), `'it'\\''s'`);
});

test('secrets: rendered for the shell, masked everywhere people look', () => {
  const pw = new Secret('hunter2-very-secret');
  const cmd = sh`echo ${pw} ${'x'}`;
  assert.equal(run(cmd), 'hunter2-very-secret x\n');
  assert.equal(cmd.toString(), 'echo *** x');
  assert.equal(JSON.stringify({ cmd }), '{"cmd":"echo *** x"}');
  assert.equal(`${pw}`, '***');
  assert.equal(String(pw), '***');
  assert.equal(JSON.stringify({ pw }), '{"pw":"***"}');
  assert.equal(inspect({ pw }), '{ pw: *** }');
  assert.ok(!inspect(cmd).includes('hunter2'), 'util.inspect of a Cmd must not show the secret');
  const wrapped = sh`sh -c ${cmd.asWord()}`;
  assert.equal(wrapped.toString(), "sh -c 'echo *** x'");
  assert.deepEqual(wrapped.secrets(), [pw]);
  assert.equal(run(wrapped), 'hunter2-very-secret x\n');
});

test('maskSecrets replaces every occurrence, longest first', () => {
  const a = new Secret('abcd');
  const b = new Secret('abcdefgh');
  assert.equal(maskSecrets('x abcdefgh y abcd z', [a, b]), 'x *** y *** z');
  assert.throws(() => new Secret(''), /empty/);
});

test('raw is taken literally and join uses the separator as written', () => {
  const c = Cmd.join([raw('printf a'), sh`printf ${'b c'}`], ' && ');
  assert.equal(c.render(), "printf a && printf 'b c'");
  assert.equal(run(c), 'ab c');
});

test('sh refuses a literal part JavaScript could not read (cooked undefined), naming it, instead of dropping it', () => {
  // What a tagged template passes for `\1` or `\u{zz}` when the compiler lets it through: the
  // cooked string is undefined and only the raw text is left; the command would silently lose it.
  const strings = Object.assign([`sed -E 's/(a)/`, undefined, `/p' `], { raw: [`sed -E 's/(a)/`, '\\1', `/p' `] });
  assert.throws(() => sh(strings as unknown as TemplateStringsArray, 'x', 'f'), /sh: the literal text before argument 2 has an escape JavaScript cannot read \("\\\\1"\): build it with raw\(\)/);
  assert.equal(run(raw(`printf '%s' 'x\\1'`)), 'x\\1');
});
