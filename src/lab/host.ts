/**
 * One lab host: an overlay root (lower = the cached base root, upper/work per host), its own identity
 * files, and a systemd-nspawn(1) container booted from it on the lab bridge.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { prepareContainerCgroups, removeContainerCgroups, systemdBooted } from './cgroup.js';
import {
  type IsOurs,
  isMountPoint,
  livePid,
  overlayUsers,
  processArgv,
  realDir,
  removeTree,
  signal,
  SIGRTMIN_3,
  spawnDetached,
  tail,
  unmountAll,
  writeInRoot,
  writePidFile,
} from './local.js';

/** What the lab knows about one host: from the inventory on `up`, from its record on `down`. */
export interface HostRecord {
  name: string;
  address: string;
  /** Prefix length of the lab network. */
  prefix: number;
  /** systemd-nspawn machine name (`-M`), unique on this machine. */
  container: string;
}

/** The files of one host under the lab's runtime folder. */
export interface HostFiles {
  dir: string;
  upper: string;
  work: string;
  merged: string;
  /** systemd-nspawn's PID. */
  pidFile: string;
  /** The container's PID 1 as this machine sees it (it outlives a systemd-nspawn killed by accident). */
  initPidFile: string;
  consoleLog: string;
  recordFile: string;
}

export function hostFiles(hostsDir: string, name: string): HostFiles {
  const dir = join(hostsDir, name);
  return {
    dir,
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    merged: join(dir, 'merged'),
    pidFile: join(dir, 'nspawn.pid'),
    initPidFile: join(dir, 'init.pid'),
    consoleLog: join(dir, 'console.log'),
    recordFile: join(dir, 'host.json'),
  };
}

export async function readHostRecord(f: HostFiles): Promise<HostRecord | undefined> {
  try {
    return JSON.parse(await readFile(f.recordFile, 'utf8')) as HostRecord;
  } catch {
    return undefined;
  }
}

/** Recognises the systemd-nspawn process of CONTAINER by its argv (see {@link bootHost}). */
function isNspawnOf(container: string): IsOurs {
  return (argv) => (argv[0] ?? '').endsWith('systemd-nspawn') && argv.includes(`--machine=${container}`);
}

/** Recognises the container's init (systemd, started by nspawn as /usr/lib/systemd/systemd or /sbin/init). */
const isInit: IsOurs = (argv) => /(^|\/)(systemd|init)$/.test(argv[0] ?? '');

/** The live processes of a host's container, by the PIDs recorded at boot. */
export interface ContainerPids {
  nspawn?: number;
  init?: number;
}

/** Which of the host's recorded processes are alive. The host runs when either is. */
export async function containerPids(rec: HostRecord, f: HostFiles): Promise<ContainerPids> {
  const nspawn = await livePid(f.pidFile, isNspawnOf(rec.container));
  const init = await livePid(f.initPidFile, isInit);
  const out: ContainerPids = {};
  if (nspawn !== undefined) out.nspawn = nspawn;
  if (init !== undefined) out.init = init;
  return out;
}

/** Finds the container's init and records it in `init.pid`. Returns its PID, or undefined while not there yet. */
async function recordInit(f: HostFiles, nspawnPid: number): Promise<number | undefined> {
  const pid = await findInit(nspawnPid);
  if (pid !== undefined) await writePidFile(f.initPidFile, pid);
  return pid;
}

/** The container's init: the child of systemd-nspawn that has exec'd it (proc(5) task/TID/children). */
async function findInit(nspawnPid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8').catch(() => '');
  for (const pid of text.trim().split(/\s+/).filter(Boolean).map(Number)) {
    const argv = await processArgv(pid);
    if (argv && isInit(argv)) return pid;
  }
  return undefined;
}

/** What every host of the lab gets besides its own identity. */
export interface HostContext {
  /** The lab key's public half (one authorized_keys line). */
  publicKey: string;
  /** `http://BRIDGE:3142`. */
  aptProxy: string;
  /**
   * Folder of per-host SSH host keys kept across `lab down`/`lab up` (`<dir>/<host>/`), so a
   * re-created host keeps the identity recorded in the inventory's known_hosts.
   */
  hostKeysDir: string;
}

/**
 * Mounts the host's overlay at `merged` (unless mounted already) and writes the host's files into
 * it, which lands them in its upper layer: hostname, hosts (kept when present for the host's address,
 * with what was added to it since), machine-id and ssh host keys (both kept when present, so a
 * restarted host keeps its identity), static address, apt proxy, authorized_keys.
 * overlayfs mount options: Documentation/filesystems/overlayfs.rst.
 */
export async function prepareHost(rec: HostRecord, f: HostFiles, baseRoot: string, ctx: HostContext): Promise<void> {
  for (const p of [f.dir, f.upper, f.work, f.merged, baseRoot]) {
    // overlayfs option values cannot contain these (mount(8) splits on ',' and lowerdir on ':').
    if (/[,:\\\s]/.test(p)) throw new Error(`path ${p} contains a comma, colon, backslash or space; overlayfs cannot use it`);
  }
  await mkdir(f.upper, { recursive: true });
  await mkdir(f.work, { recursive: true });
  await mkdir(f.merged, { recursive: true });
  await writeFile(f.recordFile, `${JSON.stringify(rec, null, 2)}\n`);
  if (!(await isMountPoint(f.merged))) {
    await execa('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${baseRoot},upperdir=${f.upper},workdir=${f.work}`, f.merged]);
  }
  const root = f.merged;
  await writeInRoot(root, 'etc/hostname', `${rec.name}\n`);
  // /etc/hosts only on a new disk (or one made for another address): a host powered off and on keeps
  // what was written into it since, as a VM keeps its disk. airflow-ha's base step adds the cluster's
  // names there; a boot that rewrote it left a restarted RabbitMQ node unable to resolve its peers,
  // so it could not answer a CLI tool on another node (`list_queues` there timed out as "unresponsive").
  // A new disk shows the base's /etc/hosts (src/lab/base.ts: localhost only), which lacks the line.
  const ownLine = `${rec.address}\t${rec.name}\n`;
  const hosts = await readFile(join(root, 'etc/hosts'), 'utf8').catch(() => '');
  if (!hosts.includes(ownLine)) {
    await writeInRoot(root, 'etc/hosts', `127.0.0.1\tlocalhost\n${ownLine}::1\tlocalhost ip6-localhost ip6-loopback\n`);
  }
  // Sorts before the image's 80-container-host0.network (DHCP), which would leave only a link-local
  // address (systemd.network(5): the first file in lexical order that matches wins). No gateway: the
  // lab has no way out but the apt proxy.
  await writeInRoot(
    root,
    'etc/systemd/network/10-host0.network',
    `# airflow-ha lab\n[Match]\nName=host0\n\n[Network]\nAddress=${rec.address}/${rec.prefix}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n`,
  );
  // No HTTP pipelining through the proxy: apt's http method was seen hanging for minutes in
  // CLOSE-WAIT when apt-cacher-ng closed a pipelined connection; a timeout and retries bound the rest.
  await writeInRoot(
    root,
    'etc/apt/apt.conf.d/01proxy',
    `Acquire::http::Proxy "${ctx.aptProxy}";\nAcquire::http::Pipeline-Depth "0";\nAcquire::http::Timeout "30";\nAcquire::Retries "3";\n`,
  );
  await writeInRoot(root, 'root/.ssh/authorized_keys', `${ctx.publicKey.trim()}\n`, 0o600);
  await chmod(join(root, 'root/.ssh'), 0o700);
  if (!(await exists(join(f.upper, 'etc/machine-id')))) {
    await writeInRoot(root, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  }
  // Host keys per host, generated here, not in the base. No RSA key: it takes ~0.5 s of CPU per
  // host, and the base's sshd_config.d names only these two (sshd_config(5) HostKey).
  const kept = join(ctx.hostKeysDir, rec.name);
  await mkdir(kept, { recursive: true, mode: 0o700 });
  for (const type of ['ed25519', 'ecdsa']) {
    const name = `ssh_host_${type}_key`;
    const key = join(kept, name);
    if (!(await exists(key))) await execa('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `root@${rec.name}`, '-f', key]);
    await writeInRoot(root, `etc/ssh/${name}`, await readFile(key, 'utf8'), 0o600);
    await writeInRoot(root, `etc/ssh/${name}.pub`, await readFile(`${key}.pub`, 'utf8'), 0o644);
  }
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

/**
 * Boots the host: `systemd-nspawn --boot` on its merged root, detached from this process, console to
 * `console.log`, PID recorded in `nspawn.pid`. `--register=no`: no systemd-machined needed. Without
 * systemd as PID 1, `--keep-unit` (no transient scope unit to ask for) and a cgroup of its own (see
 * cgroup.ts); with it, nspawn asks systemd for a scope unit of its own (man systemd-nspawn).
 * `--network-bridge` gives the container a veth `host0` whose other end is a port of the lab bridge.
 * Returns the PID.
 */
export async function bootHost(rec: HostRecord, f: HostFiles, bridge: string): Promise<number> {
  const booted = await systemdBooted();
  const cgroupProcs = booted ? [] : await prepareContainerCgroups(rec.container);
  const args = [
    '--register=no',
    ...(booted ? [] : ['--keep-unit']),
    '--boot',
    `--directory=${f.merged}`,
    `--machine=${rec.container}`,
    `--network-bridge=${bridge}`,
    '--resolv-conf=off',
    '--timezone=off',
    '--link-journal=no',
    // What systemd gives every process on a real host (systemd-system.conf(5) DefaultLimitNOFILE),
    // rather than whatever this process happens to have; RabbitMQ and PostgreSQL want many files.
    // nspawn sets the closest limit allowed: without CAP_SYS_RESOURCE the hard limit cannot rise.
    '--rlimit=RLIMIT_NOFILE=1024:524288',
  ];
  await writeFile(f.consoleLog, `# airflow-ha lab: systemd-nspawn ${args.join(' ')}\n`, { flag: 'a' });
  return spawnDetached('systemd-nspawn', args, f.consoleLog, f.pidFile, { cgroupProcs });
}

/**
 * The first line sshd sends (RFC 4253 4.2: `SSH-2.0-...`) at ADDRESS:PORT, or undefined when nothing
 * answers with one within TIMEOUTMS milliseconds.
 */
export function sshBanner(address: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((ok) => {
    let got = '';
    const s = connect({ host: address, port });
    const done = (v: string | undefined) => {
      clearTimeout(timer);
      s.destroy();
      ok(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.setEncoding('latin1');
    s.on('data', (c: string) => {
      got += c;
      const line = /^(SSH-[^\r\n]*)\r?\n/m.exec(got);
      if (line) done(line[1]);
      else if (got.length > 8192) done(undefined);
    });
    s.on('error', () => done(undefined));
    s.on('close', () => done(undefined));
  });
}

/**
 * Waits until the host's sshd answers on port 22 with an SSH banner. Throws, naming the host and its
 * console log, when its container exits or TIMEOUTMS passes. Returns the seconds waited.
 */
export async function waitForSsh(rec: HostRecord, f: HostFiles, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const { nspawn, init } = await containerPids(rec, f);
    // The init is recorded as soon as it exists, so that `down` can stop it even without nspawn.
    const recorded = init ?? (nspawn !== undefined ? await recordInit(f, nspawn) : undefined);
    if (recorded !== undefined && (await sshBanner(rec.address, 22, 2_000)) !== undefined) return (Date.now() - started) / 1000;
    if (nspawn === undefined && init === undefined) {
      throw new Error(`host ${rec.name}: its container ${rec.container} exited while booting; see ${f.consoleLog}:\n${await tail(f.consoleLog)}`);
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(
        `host ${rec.name}: sshd did not answer on ${rec.address}:22 within ${timeoutMs / 1000} s; see its console log ${f.consoleLog}:\n${await tail(f.consoleLog)}`,
      );
    }
    await sleep(500);
  }
}

/**
 * Stops the host's container by the PIDs recorded at boot (nothing else is ever signalled).
 * Orderly (default): SIGTERM makes systemd-nspawn send the container's init SIGRTMIN+3, an orderly
 * poweroff (man systemd-nspawn, --kill-signal); without its systemd-nspawn (killed by accident) the
 * init gets SIGRTMIN+3 directly (man systemd, SIGNALS). After GRACEMS the container is killed.
 * `hard`: killed at once, like pulling the power cord. Killing = SIGKILL to the container's PID 1,
 * which ends every process of its PID namespace (pid_namespaces(7)), and to systemd-nspawn.
 * Returns false when the container was not running.
 */
export async function stopContainer(rec: HostRecord, f: HostFiles, opts: { graceMs: number; hard: boolean }): Promise<boolean> {
  const { nspawn, init: recorded } = await containerPids(rec, f);
  if (nspawn === undefined && recorded === undefined) return false;
  const init = recorded ?? (nspawn !== undefined ? await findInit(nspawn) : undefined);
  // What must be gone before the host counts as off: its processes (PID namespace; killing PID 1
  // kills the rest asynchronously) and the bridge end of its veth (network namespaces are torn
  // down asynchronously too; a new boot would fail to create the same veth name meanwhile).
  const pidNs = init !== undefined ? await readlink(`/proc/${init}/ns/pid`).catch(() => undefined) : undefined;
  const veth = init !== undefined ? await hostVethIndex(init) : undefined;
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const now = await containerPids(rec, f);
      if (
        now.nspawn === undefined &&
        now.init === undefined &&
        (pidNs === undefined || !(await anyProcessInPidNs(pidNs))) &&
        (veth === undefined || !(await linkIndexExists(veth)))
      ) {
        return true;
      }
      if (Date.now() >= deadline) return false;
      await sleep(100);
    }
  };
  let off = false;
  if (!opts.hard) {
    if (nspawn !== undefined) signal(nspawn, 'SIGTERM');
    else if (init !== undefined) signal(init, SIGRTMIN_3);
    off = await gone(opts.graceMs);
  }
  if (!off) {
    if (init !== undefined) signal(init, 'SIGKILL');
    if (nspawn !== undefined) signal(nspawn, 'SIGKILL');
    if (!(await gone(15_000))) throw new Error(`host ${rec.name}: its container is still there 15 s after SIGKILL (PIDs ${nspawn ?? '-'}, ${init ?? '-'})`);
  }
  await removeContainerCgroups(rec.container);
  return true;
}

/** The ifindex, on this machine, of the bridge end of the container's `host0` veth (ip-link(8) `link_index`, read in its network namespace). */
async function hostVethIndex(init: number): Promise<number | undefined> {
  const r = await execa('nsenter', ['-t', String(init), '-n', 'ip', '-j', 'link', 'show', 'dev', 'host0'], { reject: false });
  if (r.exitCode !== 0) return undefined;
  const [link] = JSON.parse(r.stdout) as { link_index?: number }[];
  return link?.link_index;
}

async function linkIndexExists(index: number): Promise<boolean> {
  const { stdout } = await execa('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as { ifindex: number }[]).some((l) => l.ifindex === index);
}

/** True when some process is in PID namespace NS (as `readlink /proc/PID/ns/pid` prints it, e.g. `pid:[4026532301]`). */
async function anyProcessInPidNs(ns: string): Promise<boolean> {
  for (const name of await readdir('/proc')) {
    if (/^\d+$/.test(name) && (await readlink(`/proc/${name}/ns/pid`).catch(() => undefined)) === ns) return true;
  }
  return false;
}

/**
 * Unmounts the host's overlay and deletes its folder (upper, work, merged, logs). Refuses when a
 * process in any mount namespace still has the host's upper layer mounted: a container left running
 * that the lab has no PID for; deleting its disk under it would be worse than stopping.
 */
export async function removeHostDisk(rec: HostRecord, f: HostFiles): Promise<void> {
  await unmountAll(f.dir);
  const users = await overlayUsers(`upperdir=${await realDir(f.upper)}`);
  if (users.length > 0) {
    throw new Error(
      `host ${rec.name}: its disk ${f.upper} is still in use by PID(s) ${users.join(', ')} (a container the lab did not record?); stop them, then run lab down again`,
    );
  }
  await removeTree(f.dir);
  if (rec.container) await removeContainerCgroups(rec.container);
}
