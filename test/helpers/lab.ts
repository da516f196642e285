/**
 * Helpers for end-to-end tests: a small lab of real hosts (systemd containers on this machine) with
 * its own bridge, network and names, and the real CLI run as a child process.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { parse, stringify } from 'yaml';
import { loadInventory, type LoadedInventory } from '../../src/inventory/load.js';
import { labDown, labStart, labStop, labUp } from '../../src/lab/lab.js';
import type { RunEvent } from '../../src/run/events.js';
import { tempDir } from './local.js';

/** The repository root (dist/test/helpers -> ../../..). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const CLI = path.join(ROOT, 'bin', 'airflow-ha');

export interface TestLab {
  dir: string;
  inventoryFile: string;
  loaded: LoadedInventory;
  down(): Promise<void>;
  /** Powers one host off (its container stopped at once, disk kept), as a failure test's dead VM. */
  powerOff(host: string): Promise<void>;
  /** Boots a powered-off host again and waits for its sshd. */
  powerOn(host: string): Promise<void>;
}

/**
 * Boots `names.length` lab hosts on a fresh bridge and a random 10.2xx.yy.0/24 network, writing an
 * inventory for them into a temp folder. Always call `down()` (in a finally/after).
 * `extra` is merged into the inventory's `cluster` section; as a function it gets the network's
 * first three octets (e.g. `10.231.7`), so it can place VIPs: `(net) => ({ vips: [{ address: `${net}.100`, ... }] })`.
 */
export async function bootLab(
  tag: string,
  names: readonly string[],
  roles: readonly string[][],
  extra?: Record<string, unknown> | ((net: string) => Record<string, unknown>),
): Promise<TestLab> {
  const dir = tempDir(`ah-e2e-${tag}-`);
  await mkdir(dir, { recursive: true });
  const a = randomInt(200, 250);
  const b = randomInt(1, 254);
  const net = `10.${a}.${b}`;
  const id = `${tag}${randomInt(1000, 9999)}`;
  const inventory = {
    cluster: {
      name: `e2e-${id}`,
      network: `${net}.0/24`,
      packages: { kind: 'distro', proxy: `http://${net}.1:3142` },
      ...(typeof extra === 'function' ? extra(net) : (extra ?? {})),
    },
    ssh: { user: 'root', identityFile: 'lab.state/lab_ed25519', connectTimeoutSec: 5 },
    lab: { bridge: `ah${id}`.slice(0, 15), address: `${net}.1`, prefix: `ah${id}` },
    hosts: names.map((name, i) => ({ name, address: `${net}.${11 + i}`, roles: roles[i] ?? ['etcd'] })),
  };
  const inventoryFile = path.join(dir, 'lab.yaml');
  await writeFile(inventoryFile, `# end-to-end test lab\n${stringify(inventory)}`);
  const loaded = await loadInventory(inventoryFile);
  const log = (l: string) => process.stderr.write(`[lab ${id}] ${l}\n`);
  const down = async () => {
    await labDown(loaded.inventory, { stateDir: loaded.stateDir }, log);
  };
  try {
    await labUp(loaded.inventory, { stateDir: loaded.stateDir }, log);
  } catch (e) {
    await down().catch(() => undefined);
    throw e;
  }
  const paths = { stateDir: loaded.stateDir };
  return {
    dir,
    inventoryFile,
    loaded,
    down,
    powerOff: (host) => labStop(loaded.inventory, paths, host, log, { hard: true }),
    powerOn: (host) => labStart(loaded.inventory, paths, host, log),
  };
}

/**
 * Takes a test lab down and removes its folder and `dirs`. On a loaded machine a container with many
 * processes can outlast lab down's wait; lab down is idempotent, so it gets one more try.
 */
export async function tearDown(lab: TestLab | undefined, ...dirs: string[]): Promise<void> {
  try {
    if (lab) await lab.down().catch(async () => lab.down());
  } finally {
    for (const d of [...(lab ? [lab.dir] : []), ...dirs]) await rm(d, { recursive: true, force: true });
  }
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (bin/airflow-ha) and waits for it, `env` added to this process's environment; never throws on a non-zero exit. */
export async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const r = await execa(process.execPath, [CLI, ...args], { reject: false, cwd: ROOT, env: { FORCE_COLOR: '0', ...env } });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Starts the real CLI without waiting (for kill and concurrency tests). */
export function cliStart(args: readonly string[]): ResultPromise<{ reject: false; buffer: true }> {
  return execa(process.execPath, [CLI, ...args], { reject: false, cwd: ROOT, buffer: true, env: { FORCE_COLOR: '0' } });
}

/** The JSON events a `--json` run printed. */
export function events(stdout: string): Array<Record<string, unknown> & { type: string }> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });
}

/** The run_end event of a `--json` run (throws if the run printed none). */
export function runEnd(stdout: string): Extract<RunEvent, { type: 'run_end' }> {
  const e = events(stdout).find((x) => x.type === 'run_end');
  if (!e) throw new Error(`no run_end event in output:\n${stdout.slice(-2000)}`);
  return e as unknown as Extract<RunEvent, { type: 'run_end' }>;
}

/**
 * Resolves once a running CLI has printed `needle` on stdout (true), or after `timeoutMs` (false).
 * Stops listening either way, so an action taken on the process happens once.
 */
export function whenPrinted(proc: ResultPromise, needle: string, timeoutMs: number): Promise<boolean> {
  let out = '';
  return new Promise((resolve) => {
    const done = (seen: boolean) => {
      proc.stdout?.off('data', onData);
      clearTimeout(timer);
      resolve(seen);
    };
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes(needle)) done(true);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    proc.stdout?.on('data', onData);
  });
}

/** Runs `cmd` as root on one host through the CLI's `exec`: its exit code, stdout and stderr. */
export async function onHost(inventoryFile: string, host: string, cmd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await cli(['exec', '-i', inventoryFile, '--limit', host, '--json', '--', cmd]);
  const e = events(r.stdout).find((x) => x['host'] === host);
  return { code: Number(e?.['exitCode'] ?? -1), stdout: String(e?.['stdout'] ?? ''), stderr: String(e?.['stderr'] ?? r.stderr) };
}

/**
 * Gives every host of `lab`'s inventory `vars.statusLoadPerCpu: 1000`: the lab's containers see this
 * shared machine's load average, not their own, so `status` must not judge it (src/status/checks.ts
 * also leaves a container's load unjudged; the var keeps the tests independent of that detection).
 */
export async function ignoreSharedLoad(lab: TestLab): Promise<void> {
  const doc = parse(await readFile(lab.inventoryFile, 'utf8')) as { hosts: Array<Record<string, unknown>> };
  for (const h of doc.hosts) h['vars'] = { statusLoadPerCpu: 1000 };
  await writeFile(lab.inventoryFile, stringify(doc));
}
