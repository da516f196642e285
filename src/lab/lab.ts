/**
 * `airflow-ha lab`: real hosts on this machine for tests and demos. Each inventory host becomes a
 * systemd-nspawn container booted from a cached Debian 12 root (through a per-host overlay), with
 * its own address on a bridge of the lab's own, sshd with the lab key, and apt through the lab's
 * apt-cacher-ng. No NAT and no IP forwarding: the hosts reach nothing but each other and the proxy.
 *
 * State (all under the inventory's state folder, `paths.stateDir`):
 *   lab_ed25519{,.pub}   the lab key (kept)
 *   apt-cache/           apt-cacher-ng's package cache (kept; `purge` deletes it)
 *   host-keys/NAME/      each host's SSH host keys, kept so a re-created host keeps its identity
 *   lab/                 runtime, deleted by `labDown`: lab.json (what was created), apt-cacher-ng/
 *                        (config, logs, PID), hosts/NAME/ (upper, work, merged, nspawn.pid, console.log)
 * The cached base root lives in `paths.cacheDir` (default /var/cache/airflow-ha/lab) and is shared.
 */
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { InputError } from '../core/errors.js';
import { LAB_KEY_FILE } from '../inventory/load.js';
import type { Inventory } from '../inventory/schema.js';
import { APT_PROXY_PORT, type AptProxyPaths, ensureAptProxy, machineAptSources, pickMirrors, stopAptProxy } from './apt.js';
import { DEFAULT_CACHE_DIR, ensureBaseRoot, purgeBaseRoot } from './base.js';
import {
  bootHost,
  type HostRecord,
  hostFiles,
  prepareHost,
  readHostRecord,
  containerPids,
  removeHostDisk,
  sshBanner,
  stopContainer,
  waitForSsh,
} from './host.js';
import { assertRoot, ensurePackages, MACHINE_PACKAGES, removeTree } from './local.js';
import { type Cidr, deleteBridge, ensureBridge, isHostOf, parseCidr } from './net.js';

/** Receives one line of progress per call (no trailing newline). */
export interface LabLog {
  (line: string): void;
}

export interface LabPaths {
  /** The inventory's state folder, e.g. `inventory/lab.state/` (created if missing). */
  stateDir: string;
  /** Where the shared base root is cached; default /var/cache/airflow-ha/lab. */
  cacheDir?: string;
}

/** One host as {@link labStatus} sees it. */
export interface LabHostStatus {
  name: string;
  address: string;
  /** systemd-nspawn machine name. */
  container: string;
  /** Its container runs: the systemd-nspawn process recorded by `labUp`, or the container's init, is alive. */
  running: boolean;
  /** PID of that systemd-nspawn process (of the container's init if nspawn died), when running. */
  pid?: number;
  /** Port 22 at `address` answered with an SSH banner within a second. */
  sshUp: boolean;
}

/** Seconds `labUp` waits for each host's sshd. */
const SSH_TIMEOUT_MS = 90_000;
/** How long an orderly container shutdown may take before it is killed. */
const STOP_GRACE_MS = 20_000;
/** systemd-nspawn machine names: at most 64 characters (man systemd-nspawn, --machine=). */
const MAX_CONTAINER_NAME = 64;

/** What `labUp` created on this machine, so `labDown` undoes exactly that. */
interface LabRecord {
  bridge: string;
  /** True when the lab made the bridge (only then does `labDown` delete it). */
  bridgeCreated: boolean;
  address: string;
}

/** The lab's layout for one inventory, validated. */
interface Lab {
  stateDir: string;
  runDir: string;
  hostsDir: string;
  cacheDir: string;
  recordFile: string;
  keyFile: string;
  proxy: AptProxyPaths;
  bridge: string;
  address: string;
  net: Cidr;
  hosts: HostRecord[];
}

/** `${lab.prefix ?? cluster.name}-${host}`: the container name of an inventory host. */
export function containerName(inv: Inventory, host: string): string {
  return `${inv.lab?.prefix ?? inv.cluster.name}-${host}`;
}

/** The lab key's private half: `<stateDir>/lab_ed25519` (inventory/lab.yaml's `ssh.identityFile`). */
export function labKeyFile(paths: LabPaths): string {
  return join(resolve(paths.stateDir), LAB_KEY_FILE);
}

/**
 * Lays out the lab's paths for an inventory and, with `check` (everything but `down`, which must
 * work whatever the inventory says now), checks its addresses.
 * Throws InputError: no `lab:` section; with `check`, the bridge address or a host address outside
 * `cluster.network` (or its network/broadcast address), an address used twice, a container name
 * over 64 characters.
 */
function layout(inv: Inventory, paths: LabPaths, check = true): Lab {
  if (!inv.lab) {
    throw new InputError('the inventory has no `lab:` section (bridge, address, prefix); `airflow-ha lab` needs one, see inventory/lab.yaml');
  }
  const net = parseCidr(inv.cluster.network);
  const problems: string[] = [];
  if (!isHostOf(inv.lab.address, net)) problems.push(`lab.address ${inv.lab.address} is not a host address of cluster.network ${inv.cluster.network}`);
  const seen = new Map<string, string>([[inv.lab.address, 'lab.address']]);
  for (const h of inv.hosts) {
    if (!isHostOf(h.address, net)) problems.push(`host ${h.name}: address ${h.address} is not a host address of cluster.network ${inv.cluster.network}`);
    const other = seen.get(h.address);
    if (other) problems.push(`host ${h.name}: address ${h.address} is also used by ${other}`);
    seen.set(h.address, `host ${h.name}`);
    const c = containerName(inv, h.name);
    if (c.length > MAX_CONTAINER_NAME) problems.push(`host ${h.name}: container name ${c} is longer than ${MAX_CONTAINER_NAME} characters; shorten lab.prefix`);
  }
  if (check && problems.length > 0) throw new InputError(`the lab cannot be built from this inventory:\n  ${problems.join('\n  ')}`);

  const stateDir = resolve(paths.stateDir);
  const runDir = join(stateDir, 'lab');
  return {
    stateDir,
    runDir,
    hostsDir: join(runDir, 'hosts'),
    cacheDir: resolve(paths.cacheDir ?? DEFAULT_CACHE_DIR),
    recordFile: join(runDir, 'lab.json'),
    keyFile: labKeyFile(paths),
    proxy: { runDir: join(runDir, 'apt-cacher-ng'), cacheDir: join(stateDir, 'apt-cache') },
    bridge: inv.lab.bridge,
    address: inv.lab.address,
    net,
    hosts: inv.hosts.map((h) => ({ name: h.name, address: h.address, prefix: net.prefix, container: containerName(inv, h.name) })),
  };
}

/** The hosts named in ONLY (all when undefined). Throws InputError for a name not in the inventory. */
function select(lab: Lab, only: readonly string[] | undefined): HostRecord[] {
  if (!only) return lab.hosts;
  const unknown = only.filter((n) => !lab.hosts.some((h) => h.name === n));
  if (unknown.length > 0) throw new InputError(`not hosts of this inventory: ${unknown.join(', ')}`);
  return lab.hosts.filter((h) => only.includes(h.name));
}

async function readLabRecord(lab: Lab): Promise<LabRecord | undefined> {
  try {
    return JSON.parse(await readFile(lab.recordFile, 'utf8')) as LabRecord;
  } catch {
    return undefined;
  }
}

/** Makes the lab key (ed25519, no passphrase, 0600) unless it exists; returns its public line. */
async function ensureLabKey(keyFile: string, log: LabLog): Promise<string> {
  const pub = `${keyFile}.pub`;
  if (!(await stat(keyFile).catch(() => undefined))) {
    await rm(pub, { force: true });
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'airflow-ha-lab', '-f', keyFile]);
    log(`lab key: created ${keyFile}`);
  }
  await chmod(keyFile, 0o600);
  try {
    return await readFile(pub, 'utf8');
  } catch {
    const { stdout } = await execa('ssh-keygen', ['-y', '-f', keyFile]);
    await writeFile(pub, `${stdout.trim()} airflow-ha-lab\n`);
    return stdout;
  }
}

/**
 * Brings the lab up: one running container per inventory host (or per name in `opts.hosts`), each
 * answering SSH at its inventory address with the lab key. Idempotent: hosts already running are
 * left alone, and what exists (packages, base root, bridge, apt proxy) is reused.
 *
 * Steps: install the machine packages it needs (apt-get; `apt-get update` only when one is
 * missing); build the cached Debian 12 base root once (debootstrap minbase, about a minute);
 * create the bridge `lab.bridge` with `lab.address`/prefix of `cluster.network` (no NAT, ip_forward
 * untouched); start the lab's apt-cacher-ng on `lab.address:3142` and check it serves bookworm's
 * Release file; per host, mount its overlay, write its identity and boot it (all hosts in
 * parallel); wait up to 90 s per host for its SSH banner.
 *
 * Throws InputError for an inventory without `lab:`, with an address outside `cluster.network`, or
 * for an unknown name in `opts.hosts`; Error when not root, when the network overlaps one of this
 * machine's interfaces, or when a step fails (the message names the host and its console log).
 */
export async function labUp(inv: Inventory, paths: LabPaths, log: LabLog, opts: { hosts?: string[] } = {}): Promise<void> {
  const lab = layout(inv, paths);
  const hosts = select(lab, opts.hosts);
  assertRoot();
  await ensurePackages(MACHINE_PACKAGES, log);
  const mirrors = pickMirrors(await machineAptSources());
  const baseRoot = await ensureBaseRoot(lab.cacheDir, mirrors, log);

  await mkdir(lab.hostsDir, { recursive: true });
  const publicKey = await ensureLabKey(lab.keyFile, log);
  await ensureInotifyInstances(lab.hosts.length, log);

  const before = await readLabRecord(lab);
  const ours = before?.bridge === lab.bridge && before.bridgeCreated;
  const record = (bridgeCreated: boolean) =>
    writeFile(lab.recordFile, `${JSON.stringify({ bridge: lab.bridge, bridgeCreated, address: lab.address } satisfies LabRecord, null, 2)}\n`);
  // Ownership is written down before the bridge exists, so a crash in between still lets `down` remove it.
  const created = await ensureBridge(lab.bridge, lab.address, lab.net, ours, () => record(true));
  if (!created && !ours) await record(false);
  if (created) log(`bridge: created ${lab.bridge} with ${lab.address}/${lab.net.prefix}`);

  await ensureAptProxy(lab.proxy, lab.address, mirrors, log);
  const ctx = { publicKey, aptProxy: `http://${lab.address}:${APT_PROXY_PORT}`, hostKeysDir: join(lab.stateDir, 'host-keys') };

  const results = await Promise.allSettled(
    hosts.map(async (h) => {
      const f = hostFiles(lab.hostsDir, h.name);
      const { nspawn, init } = await containerPids(h, f);
      const pid = nspawn ?? init;
      if (pid !== undefined) {
        log(`host ${h.name}: already running (container ${h.container}, PID ${pid}${nspawn ? '' : ', without its systemd-nspawn'})`);
      } else {
        await prepareHost(h, f, baseRoot, ctx);
        const started = await bootHost(h, f, lab.bridge);
        log(`host ${h.name}: booting container ${h.container} (PID ${started}) at ${h.address}`);
      }
      const waited = await waitForSsh(h, f, SSH_TIMEOUT_MS);
      if (pid === undefined) log(`host ${h.name}: sshd answers after ${waited.toFixed(1)} s`);
    }),
  );
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failed.length > 0) {
    throw new Error(`lab up: ${failed.length} of ${hosts.length} hosts failed (\`lab down\` cleans up):\n${failed.join('\n\n')}`);
  }
}

/**
 * inotify instances one container's systemd and services hold (about 9 measured on a lab host with
 * PostgreSQL, RabbitMQ or Airflow), with room to spare. All containers run as this machine's root,
 * so they share root's `fs.inotify.max_user_instances` (inotify(7)); Debian's default of 128 runs out
 * at about a dozen hosts, and a container's systemd then fails units with "Too many open files".
 */
const INOTIFY_PER_HOST = 24;
const INOTIFY_SYSCTL = '/proc/sys/fs/inotify/max_user_instances';

/** Raises `fs.inotify.max_user_instances` (until the next boot) when it is below what `hosts` lab hosts need, and says so. */
async function ensureInotifyInstances(hosts: number, log: LabLog): Promise<void> {
  const current = Number((await readFile(INOTIFY_SYSCTL, 'utf8')).trim());
  const wanted = 128 + INOTIFY_PER_HOST * hosts;
  if (!(current < wanted)) return;
  await writeFile(INOTIFY_SYSCTL, `${wanted}\n`);
  log(`inotify: fs.inotify.max_user_instances raised from ${current} to ${wanted} for ${hosts} containers (until the next boot)`);
}

/** The host records of the hosts this lab has on disk (including ones no longer in the inventory). */
async function hostsOnDisk(lab: Lab): Promise<HostRecord[]> {
  const names = await readdir(lab.hostsDir).catch(() => [] as string[]);
  const out: HostRecord[] = [];
  for (const name of names) {
    const rec = await readHostRecord(hostFiles(lab.hostsDir, name));
    out.push(rec ?? lab.hosts.find((h) => h.name === name) ?? { name, address: '', prefix: lab.net.prefix, container: '' });
  }
  return out;
}

/**
 * Takes the lab down: stops each selected host's container (only by the PID `labUp` recorded:
 * SIGTERM for an orderly poweroff, SIGKILL after 20 s), unmounts its overlay and deletes its
 * upper/work/merged folders. When no host of the lab is left, also stops the lab's apt-cacher-ng (by
 * its recorded PID), deletes the bridge if the lab created it, and deletes the lab's runtime files.
 * Keeps the lab key, the apt cache and the cached base root; `purge` deletes the apt cache and the
 * base root too (the base root only when no overlay on this machine still uses it).
 * Works on partial state (dead PIDs, mounts left behind after a crash). Default: all hosts, including
 * hosts on disk that the inventory no longer lists.
 *
 * Throws InputError for an inventory without `lab:` or an unknown name in `opts.hosts`; Error when
 * not root or when something cannot be stopped or unmounted.
 */
export async function labDown(
  inv: Inventory,
  paths: LabPaths,
  log: LabLog,
  opts: { hosts?: string[]; purge?: boolean } = {},
): Promise<void> {
  const lab = layout(inv, paths, false);
  const onDisk = await hostsOnDisk(lab);
  const chosen = opts.hosts ? select(lab, opts.hosts) : onDisk;
  assertRoot();

  const results = await Promise.allSettled(
    chosen.map(async (h) => {
      const f = hostFiles(lab.hostsDir, h.name);
      const rec = (await readHostRecord(f)) ?? h;
      if (rec.container && (await stopContainer(rec, f, { graceMs: STOP_GRACE_MS, hard: false }))) {
        log(`host ${h.name}: container ${rec.container} stopped`);
      }
      await removeHostDisk(rec, f);
    }),
  );
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failed.length > 0) throw new Error(`lab down: ${failed.join('\n')}`);

  const left = (await hostsOnDisk(lab)).length;
  if (left === 0 && (await stat(lab.runDir).catch(() => undefined))) {
    await stopAptProxy(lab.proxy);
    const rec = await readLabRecord(lab);
    if (rec?.bridgeCreated) {
      await deleteBridge(rec.bridge);
      log(`bridge: deleted ${rec.bridge}`);
    }
    await removeTree(lab.runDir);
    log('lab down: no host left; apt proxy stopped and runtime files deleted');
  }
  if (opts.purge && left > 0) {
    log(`purge: skipped, ${left} host(s) of this lab are still there and use the apt cache`);
  } else if (opts.purge) {
    await rm(lab.proxy.cacheDir, { recursive: true, force: true });
    if (await purgeBaseRoot(lab.cacheDir)) log(`purge: deleted the apt cache and the base root in ${lab.cacheDir}`);
    else log(`purge: deleted the apt cache; the base root in ${lab.cacheDir} is still used by another lab, kept`);
  }
}

/**
 * Each inventory host's state: whether its container (by the PIDs `labUp` recorded) is alive and
 * whether port 22 at its address answers with an SSH banner (1 s timeout; all hosts probed in
 * parallel). Only running hosts are probed: without the lab's bridge the address would be routed
 * off this machine. Reads only; needs no root. Throws InputError like `labUp`.
 */
export async function labStatus(inv: Inventory, paths: LabPaths): Promise<LabHostStatus[]> {
  const lab = layout(inv, paths);
  return Promise.all(
    lab.hosts.map(async (h) => {
      const pids = await containerPids(h, hostFiles(lab.hostsDir, h.name));
      const pid = pids.nspawn ?? pids.init;
      const sshUp = pid !== undefined && (await sshBanner(h.address, 22, 1_000)) !== undefined;
      const s: LabHostStatus = { name: h.name, address: h.address, container: h.container, running: pid !== undefined, sshUp };
      if (pid !== undefined) s.pid = pid;
      return s;
    }),
  );
}

/**
 * Simulates a powered-off host for failure tests: stops the container of HOST and keeps its disk
 * (overlay upper layer), so {@link labStart} boots the same host again. Orderly shutdown by default
 * (SIGTERM; SIGKILL after 20 s); `hard: true` kills it at once, like pulling the power cord.
 * A host that is not running is not an error. Throws InputError for an unknown host.
 */
export async function labStop(inv: Inventory, paths: LabPaths, host: string, log: LabLog, opts: { hard?: boolean } = {}): Promise<void> {
  const lab = layout(inv, paths);
  const [h] = select(lab, [host]);
  if (!h) throw new InputError(`not a host of this inventory: ${host}`);
  assertRoot();
  const stopped = await stopContainer(h, hostFiles(lab.hostsDir, h.name), { graceMs: STOP_GRACE_MS, hard: opts.hard === true });
  log(stopped ? `host ${h.name}: ${opts.hard ? 'killed' : 'powered off'} (disk kept)` : `host ${h.name}: was not running`);
}

/**
 * Boots HOST again after {@link labStop} (same disk, host keys and machine-id) and waits for its
 * sshd; the same as `labUp` for that one host, so it also works for a host never started.
 */
export async function labStart(inv: Inventory, paths: LabPaths, host: string, log: LabLog): Promise<void> {
  await labUp(inv, paths, log, { hosts: [host] });
}

