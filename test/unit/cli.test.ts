/**
 * The operator's conventions of the command line, run through main() in-process: NO_COLOR and
 * FORCE_COLOR, `validate --json` on errors, an "Examples:" section in every `--help`,
 * AIRFLOW_HA_INVENTORY as the default of `-i`, and `--version` from package.json. Nothing here
 * connects anywhere but to a closed port of this machine.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram, colourWanted } from '../../src/cli/main.js';
import { runMain } from '../helpers/cli.js';
import { CLI, ROOT } from '../helpers/lab.js';
import { tempDir } from '../helpers/local.js';

// ECMA-48 CSI: what every colour (and bold, dim) starts with.
const ANSI = /\x1b\[/;

test('colour: NO_COLOR (non-empty) turns it off, also over FORCE_COLOR; FORCE_COLOR turns it on, 0 or false off; else the terminal decides', () => {
  assert.equal(colourWanted({}, true), true);
  assert.equal(colourWanted({}, false), false);
  assert.equal(colourWanted({ NO_COLOR: '1' }, true), false);
  assert.equal(colourWanted({ NO_COLOR: '' }, true), true, 'an empty NO_COLOR is not set (no-color.org)');
  assert.equal(colourWanted({ NO_COLOR: '1', FORCE_COLOR: '1' }, false), false);
  assert.equal(colourWanted({ FORCE_COLOR: '1' }, false), true);
  assert.equal(colourWanted({ FORCE_COLOR: '' }, false), true);
  assert.equal(colourWanted({ FORCE_COLOR: '0' }, true), false);
  assert.equal(colourWanted({ FORCE_COLOR: 'false' }, true), false);
});

/** A one-host inventory whose sshd is a closed port of 127.0.0.2: `status` answers at once, host down. */
async function unreachableInventory(dir: string): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.2', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const file = path.join(dir, 'one.yaml');
  await writeFile(
    file,
    ['cluster:', '  name: colour-test', '  network: 127.0.0.0/24', 'ssh:', `  port: ${port}`, '  connectTimeoutSec: 2', 'hosts:', '  - { name: h1, address: 127.0.0.2, roles: [target] }', ''].join('\n'),
  );
  return file;
}

test('NO_COLOR: status prints no ANSI escape, with FORCE_COLOR unset or set (in-process and through bin/airflow-ha)', async () => {
  const dir = tempDir();
  await mkdir(dir, { recursive: true });
  try {
    const inv = await unreachableInventory(dir);
    const args = ['status', '-i', inv];
    // Where colour would appear: the verdict and the down host.
    const forced = await runMain(args, { env: { FORCE_COLOR: '1' } });
    assert.equal(forced.code, 1, forced.stderr);
    assert.match(forced.stdout, ANSI, 'FORCE_COLOR=1 colours the report');
    for (const env of [{ NO_COLOR: '1' }, { NO_COLOR: '1', FORCE_COLOR: '1' }]) {
      const r = await runMain(args, { env });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /DEGRADED colour-test/);
      assert.doesNotMatch(r.stdout + r.stderr, ANSI, JSON.stringify(env));
    }
    // On a terminal, colour is the default: NO_COLOR still wins.
    assert.match((await runMain(args, { isTTY: true })).stdout, ANSI);
    assert.doesNotMatch((await runMain(args, { isTTY: true, env: { NO_COLOR: '1' } })).stdout, ANSI);
    // The real process: its environment reaches the same decision.
    const run = (env: NodeJS.ProcessEnv) =>
      promisify(execFile)(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'], ...env } }).catch((e: { stdout: string; code: number }) => e);
    const child = await run({ NO_COLOR: '1', FORCE_COLOR: '1' });
    assert.match(child.stdout, /DEGRADED colour-test/);
    assert.doesNotMatch(child.stdout, ANSI);
    assert.match((await run({ FORCE_COLOR: '1' })).stdout, ANSI);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('validate --json: the findings as one JSON document on errors too (exit 2, file:line:col of each)', async () => {
  const bad = path.join(ROOT, 'test/fixtures/inventories/bad/duplicate-address.yaml');
  const r = await runMain(['validate', '-i', bad, '--json']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, '');
  const doc = JSON.parse(r.stdout) as { ok: boolean; file: string; message: string; errors: Array<{ rule: string; path: string; pos: { file: string; line: number; col: number } }> };
  assert.equal(doc.ok, false);
  assert.equal(doc.file, bad);
  assert.match(doc.message, /has 1 error\(s\)/);
  assert.deepEqual(
    doc.errors.map((e) => `${path.basename(e.pos.file)}:${e.pos.line}:${e.pos.col} ${e.rule} ${e.path}`),
    ['duplicate-address.yaml:14:27 host:unique-address hosts[4].address'],
  );
  // A YAML syntax error and an unreadable file are findings too.
  const dup = JSON.parse((await runMain(['validate', '-i', 'test/fixtures/inventories/bad/duplicate-key.yaml', '--json'])).stdout) as { errors: Array<{ rule: string; pos: { line: number } }> };
  assert.ok(dup.errors.length > 0 && dup.errors.every((e) => e.pos.line > 0), JSON.stringify(dup));
  const missing = await runMain(['validate', '-i', 'no/such.yaml', '--json']);
  assert.equal(missing.code, 2);
  assert.match((JSON.parse(missing.stdout) as { message: string }).message, /cannot read inventory .*no such file/);
  const unknown = await runMain(['validate', '-i', 'inventory/lab.yaml', '--playbook', 'nope', '--json']);
  assert.equal(unknown.code, 2);
  assert.match((JSON.parse(unknown.stdout) as { message: string }).message, /unknown playbook "nope"/);
  // And on success, the same shape.
  const ok = await runMain(['validate', '-i', 'inventory/lab.yaml', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(Object.keys(JSON.parse(ok.stdout) as object), ['ok', 'file', 'hosts', 'errors', 'warnings']);
});

/** Every command's name path under `cmd` (`['lock', 'status']`, ...), the root as []. */
function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return [prefix, ...cmd.commands.flatMap((c) => commandPaths(c, [...prefix, c.name()]))];
}

test('every --help ends with an Examples: section whose lines run that command', async () => {
  const paths = commandPaths(buildProgram({ out: () => undefined, err: () => undefined, isTTY: false, colour: false, env: {}, cwd: ROOT }, [], () => undefined));
  assert.ok(paths.length >= 20, `saw ${paths.length} commands`);
  for (const p of paths) {
    const r = await runMain([...p, '--help']);
    assert.equal(r.code, 0, `${p.join(' ')} --help`);
    const examples = r.stdout.split('\nExamples:\n')[1];
    assert.ok(examples, `${['airflow-ha', ...p].join(' ')} --help has no Examples: section`);
    const lines = examples.trimEnd().split('\n');
    assert.ok(lines.length >= 1 && lines.length <= 2, `${p.join(' ')}: one or two examples`);
    for (const l of lines) assert.ok(l.startsWith(`  $ ${['airflow-ha', ...p].join(' ')}`) || p.length === 0, `${p.join(' ')}: ${l}`);
  }
});

test('AIRFLOW_HA_INVENTORY is the default of -i; an explicit -i wins; neither is bad input', async () => {
  const lab = path.join(ROOT, 'inventory/lab.yaml');
  const fromEnv = await runMain(['validate'], { env: { AIRFLOW_HA_INVENTORY: 'inventory/lab.yaml' } });
  assert.equal(fromEnv.code, 0, fromEnv.stderr);
  assert.equal(fromEnv.stdout.split(':')[0], lab);
  const explicit = await runMain(['validate', '-i', 'test/fixtures/inventories/good/minimal.yaml'], { env: { AIRFLOW_HA_INVENTORY: 'inventory/lab.yaml' } });
  assert.equal(explicit.code, 0, explicit.stderr);
  assert.equal(explicit.stdout.split(':')[0], path.join(ROOT, 'test/fixtures/inventories/good/minimal.yaml'));
  const neither = await runMain(['validate'], { env: { AIRFLOW_HA_INVENTORY: '' } });
  assert.equal(neither.code, 2);
  assert.match(neither.stderr, /required option '-i, --inventory <file>' not specified/);
  // add-worker has the same option: it edits the file the environment names (here it refuses an
  // address outside the network before writing or connecting anything).
  const add = await runMain(['add-worker', 'w9', '--address', '192.0.2.1', '--check'], { env: { AIRFLOW_HA_INVENTORY: 'inventory/lab.yaml' } });
  assert.equal(add.code, 2);
  assert.match(add.stderr, new RegExp(`${lab}:\\d+:\\d+: error \\[net:outside-network\\]`));
});

test('--version prints the version in package.json', async () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const r = await runMain(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${pkg.version}\n`);
});
