/**
 * The runner's secrets guard in a rotation (`secretsGuard.previous`): hosts holding the fingerprint
 * of the secrets before the rotation are accepted, the new fingerprint is written only after the
 * last step (a rotation that fails leaves every host's fingerprint as it was), and a host of a third
 * set is refused before anything runs. The hosts are this machine, each with its own root folder:
 * the paths /etc/airflow-ha and /var/lib/airflow-ha of every command and upload are moved into it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { raw, sh, type Cmd } from '../../src/core/cmd.js';
import { ExitCode } from '../../src/core/errors.js';
import { Secret } from '../../src/core/secret.js';
import { Inventory } from '../../src/inventory/schema.js';
import { generateSecretValue, SECRET_KINDS, SECRET_NAMES, secretsFingerprint, type ClusterSecrets } from '../../src/inventory/secrets.js';
import type { RunEvent } from '../../src/run/events.js';
import { runPlaybook } from '../../src/run/execute.js';
import type { Playbook } from '../../src/run/playbook.js';
import { command } from '../../src/tasks/command.js';
import type { Connection, ExecOptions, PutOptions, Transport } from '../../src/ssh/transport.js';
import { inTemp, LocalConnection } from '../helpers/local.js';

const inventory = Inventory.parse({
  cluster: { name: 'rot-unit', network: '10.9.0.0/24' },
  hosts: ['h1', 'h2', 'h3'].map((name, i) => ({ name, address: `10.9.0.${11 + i}`, roles: ['etcd'] })),
});
const FP = 'etc/airflow-ha/secrets.fingerprint';

/** This machine as host `host`, its /etc/airflow-ha and /var/lib/airflow-ha under `root`. */
class RootedConnection implements Connection {
  readonly local: LocalConnection;
  constructor(
    readonly host: string,
    readonly root: string,
  ) {
    this.local = new LocalConnection(host);
  }
  private move(text: string): string {
    return text.replaceAll('/etc/airflow-ha', `${this.root}/etc/airflow-ha`).replaceAll('/var/lib/airflow-ha', `${this.root}/var/lib/airflow-ha`);
  }
  exec(cmd: Cmd, opts?: ExecOptions) {
    return this.local.exec(raw(this.move(cmd.render())), opts);
  }
  put(p: string, content: Buffer, opts: PutOptions) {
    return this.local.put(this.move(p), content, opts);
  }
}

function transport(dir: string): Transport {
  const conns = new Map<string, Connection>();
  return {
    async connect(host) {
      if (!conns.has(host)) conns.set(host, new RootedConnection(host, path.join(dir, host)));
      return conns.get(host) as Connection;
    },
    async close() {},
  };
}

function generated(): ClusterSecrets {
  return Object.fromEntries(SECRET_NAMES.map((n) => [n, new Secret(generateSecretValue(SECRET_KINDS[n]))])) as unknown as ClusterSecrets;
}

/** A one-step playbook: each host copies its fingerprint file (or "none") to `seen` while the step runs; `fail` makes h2 fail. */
function playbook(fail = false): Playbook {
  return {
    name: 'rotate-secret',
    description: 'test',
    requiredRoles: [],
    steps: [
      {
        name: 'consumers',
        hosts: { all: true },
        tasks: ({ host }) => [command({ name: 'record', cmd: sh`{ cat /etc/airflow-ha/secrets.fingerprint 2>/dev/null || echo none; } > /etc/airflow-ha/seen${fail && host.name === 'h2' ? raw(' && exit 3') : raw('')}` })],
      },
    ],
  };
}

async function run(dir: string, secrets: ClusterSecrets, previous: ClusterSecrets, fail = false) {
  const events: RunEvent[] = [];
  const result = await runPlaybook({
    playbook: playbook(fail),
    inventory,
    secrets,
    transport: transport(dir),
    reporter: { emit: (e) => events.push(e) },
    check: false,
    limit: { all: true },
    command: 'airflow-ha rotate-secret (test)',
    operator: 'tester@unit',
    secretsGuard: { file: 'secrets.yaml', created: [], newCluster: false, command: 'airflow-ha rotate-secret -i site.yaml airflowDb', previous },
  });
  return { result, events };
}

async function setUp(dir: string, lines: Record<string, string | undefined>): Promise<void> {
  for (const h of ['h1', 'h2', 'h3']) {
    await mkdir(path.join(dir, h, 'etc/airflow-ha'), { recursive: true });
    await mkdir(path.join(dir, h, 'var/lib/airflow-ha'), { recursive: true });
    const line = lines[h];
    if (line) await writeFile(path.join(dir, h, FP), `${line}\n`, { mode: 0o600 });
  }
}

const statuses = (events: RunEvent[]) => events.flatMap((e) => (e.type === 'fingerprint' ? [`${e.host} ${e.status}`] : []));

test('a rotation accepts hosts of the old set, runs its steps on the old fingerprint, then writes the new one on every host', () =>
  inTemp(async (dir) => {
    const before = generated();
    const after = { ...before, airflowDb: new Secret(generateSecretValue('password')) };
    const oldLine = secretsFingerprint(before, inventory.cluster.name);
    const newLine = secretsFingerprint(after, inventory.cluster.name);
    await setUp(dir, { h1: oldLine, h2: oldLine });
    const { result, events } = await run(dir, after, before);
    assert.equal(result.exitCode, ExitCode.ok, result.error?.message);
    assert.deepEqual(statuses(events), ['h1 previous', 'h2 previous', 'h3 absent', 'h1 written', 'h2 written', 'h3 written']);
    const stepEnd = events.findIndex((e) => e.type === 'step_end');
    const firstWrite = events.findIndex((e) => e.type === 'fingerprint' && e.status === 'written');
    assert.ok(stepEnd >= 0 && firstWrite > stepEnd, 'written after the last step');
    for (const h of ['h1', 'h2', 'h3']) {
      assert.equal((await readFile(path.join(dir, h, 'etc/airflow-ha/seen'), 'utf8')).trim(), h === 'h3' ? 'none' : oldLine, `${h} ran its step on the old fingerprint`);
      assert.equal((await readFile(path.join(dir, h, FP), 'utf8')).trim(), newLine, h);
    }
    // Run again (a resumed rotation after it ended): every host is the new set, nothing written.
    const again = await run(dir, after, before);
    assert.equal(again.result.exitCode, ExitCode.ok);
    assert.deepEqual(statuses(again.events), ['h1 same', 'h2 same', 'h3 same']);
  }));

test('a rotation that fails writes no fingerprint; a host of a third set is refused before any step', () =>
  inTemp(async (dir) => {
    const before = generated();
    const after = { ...before, haproxyStats: new Secret(generateSecretValue('password')) };
    const oldLine = secretsFingerprint(before, inventory.cluster.name);
    await setUp(dir, { h1: oldLine, h2: oldLine, h3: oldLine });
    const failed = await run(dir, after, before, true);
    assert.equal(failed.result.exitCode, ExitCode.taskFailed);
    assert.ok(!statuses(failed.events).some((s) => s.endsWith('written')), statuses(failed.events).join(', '));
    for (const h of ['h1', 'h2', 'h3']) assert.equal((await readFile(path.join(dir, h, FP), 'utf8')).trim(), oldLine, h);

    const other = generated();
    await writeFile(path.join(dir, 'h1', FP), `${secretsFingerprint(other, inventory.cluster.name)}\n`);
    const refused = await run(dir, after, before);
    assert.equal(refused.result.exitCode, ExitCode.badInput);
    assert.match(refused.result.error?.message ?? '', /1 host\(s\) hold a secrets fingerprint in \/etc\/airflow-ha\/secrets\.fingerprint of neither the secrets before this rotation nor the ones after it: h1; nothing was changed/);
    assert.ok(!refused.events.some((e) => e.type === 'step_start'), 'no step ran');
  }));
