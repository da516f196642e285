/**
 * Small helpers for the lab's work on THIS machine: processes recorded by PID, mounts, packages.
 * Everything here acts only on what the caller names (a PID it recorded, a folder it owns).
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, realpath, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

/** Fails unless this process runs as root (uid 0): debootstrap, mount, ip link and systemd-nspawn need it. */
export function assertRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('airflow-ha lab must run as root: it uses debootstrap, mount, ip link and systemd-nspawn (try sudo)');
  }
}

/**
 * The argv of a live process, from /proc/PID/cmdline (proc(5)). Undefined when the process is gone,
 * is a zombie or a kernel thread (their cmdline is empty).
 */
export async function processArgv(pid: number): Promise<string[] | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (text === '') return undefined;
    return text.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Tells whether a process's argv is the one we started (with its start time, guards against a recycled PID). */
export type IsOurs = (argv: readonly string[]) => boolean;

/**
 * The fields of /proc/PID/stat after the command name (proc(5)): [0] is the state letter (field 3:
 * R, S, D, Z...), [19] the start time in clock ticks since boot (field 22). Undefined when there is
 * no such process. The command name is in parentheses and may itself contain ') '.
 */
async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A PID file: `PID STARTTIME`. The start time tells our process from a later one with the same PID. */
interface PidRecord {
  pid: number;
  start?: string;
}

async function readPidRecord(file: string): Promise<PidRecord | undefined> {
  try {
    const [p, start] = (await readFile(file, 'utf8')).trim().split(/\s+/);
    const pid = Number.parseInt(p ?? '', 10);
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    return start ? { pid, start } : { pid };
  } catch {
    return undefined;
  }
}

/** Records PID (and its start time) in FILE. */
export async function writePidFile(file: string, pid: number): Promise<void> {
  await writeFile(file, `${pid} ${(await statFields(pid))?.[19] ?? ''}\n`);
}

/**
 * The PID recorded in FILE when that very process is still alive: same start time, and `isOurs`
 * recognises its argv. Undefined otherwise (no file, process gone, zombie, PID reused).
 */
export async function livePid(file: string, isOurs: IsOurs): Promise<number | undefined> {
  const rec = await readPidRecord(file);
  if (rec === undefined) return undefined;
  const argv = await processArgv(rec.pid);
  if (!argv || !isOurs(argv)) return undefined;
  if (rec.start !== undefined && (await statFields(rec.pid))?.[19] !== rec.start) return undefined;
  return rec.pid;
}

/**
 * SIGRTMIN+3, which makes systemd power off in order (man systemd, SIGNALS). Node knows no real-time
 * signals by name; glibc's SIGRTMIN is 34 on Linux (signal(7)), so this is 37 (`kill -l RTMIN+3`).
 */
export const SIGRTMIN_3 = 37;

/** Sends SIG to PID; a process already gone is not an error. */
export function signal(pid: number, sig: NodeJS.Signals | number): void {
  try {
    process.kill(pid, sig);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** Polls until PID is gone (or no longer ours), for at most MS milliseconds. True when gone. */
export async function waitGone(pid: number, isOurs: IsOurs, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const argv = await processArgv(pid);
    if (!argv || !isOurs(argv)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(200);
  }
}

/**
 * Starts a long-running process detached from this one (its own session, like setsid(1)), stdout and
 * stderr appended to LOGFILE, its PID recorded in PIDFILE, and returns the PID.
 * The PID file is written by the process itself before it execs FILE (`sh -c 'echo $$ >...; exec'`,
 * exec keeps the PID), so even if this process dies at any moment, nothing runs unrecorded.
 * `cgroupProcs`: cgroup.procs files the process joins before exec (cgroups(7)).
 */
export async function spawnDetached(
  file: string,
  args: readonly string[],
  logFile: string,
  pidFile: string,
  opts: { cgroupProcs?: readonly string[] } = {},
): Promise<number> {
  const out = await open(logFile, 'a');
  try {
    // sh -c SCRIPT sh PIDFILE N CGROUP_PROCS... FILE ARGS...
    const script = [
      'echo "$$" > "$1" || exit 1',
      'n=$2; shift 2',
      'while [ "$n" -gt 0 ]; do echo "$$" > "$1" || exit 1; shift; n=$((n - 1)); done',
      'exec "$@"',
    ].join('\n');
    const cgroups = opts.cgroupProcs ?? [];
    const argv = ['-c', script, 'sh', pidFile, String(cgroups.length), ...cgroups, file, ...args];
    const child = spawn('/bin/sh', argv, { detached: true, stdio: ['ignore', out.fd, out.fd] });
    const pid = await new Promise<number>((ok, fail) => {
      child.once('error', (e) => fail(new Error(`cannot start ${file}: ${e.message}`)));
      child.once('spawn', () => (child.pid ? ok(child.pid) : fail(new Error(`cannot start ${file}: no PID`))));
    });
    child.unref();
    // Once the shell has exec'd FILE it has written its PID; add the start time (unchanged by exec)
    // to tell this process from a later one with the same PID.
    for (let i = 0; ; i++) {
      const argv = await processArgv(pid);
      // cmdline also reads empty for a moment in the middle of execve(2): only a zombie or no
      // process at all means it has exited.
      if (argv === undefined && ['Z', 'X', undefined].includes((await statFields(pid))?.[0])) {
        throw new Error(`${file} exited at once; see ${logFile}:\n${await tail(logFile)}`);
      }
      if (argv !== undefined && argv[0] !== '/bin/sh') break;
      if (i >= 100) throw new Error(`${file} did not start within 10 s (PID ${pid})`);
      await sleep(100);
    }
    await writePidFile(pidFile, pid);
    return pid;
  } finally {
    await out.close();
  }
}

/** The last N lines of a text file (empty when unreadable), for error messages. */
export async function tail(file: string, n = 20): Promise<string> {
  try {
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    return lines.slice(-n).join('\n');
  } catch {
    return '';
  }
}

/** Decodes the octal escapes (\040 etc.) of /proc/self/mountinfo fields (proc(5)). */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** One line of /proc/self/mountinfo: mount point and the per-superblock options (proc(5)). */
export interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string;
}

export async function mountTable(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const [fsType, , superOptions] = (right ?? '').split(' ');
    if (mountPoint && fsType) out.push({ mountPoint: unescapeMountField(mountPoint), fsType, superOptions: superOptions ?? '' });
  }
  return out;
}

/** The absolute, symlink-free form of DIR when it exists (mountinfo shows real paths), else resolve(DIR). */
export async function realDir(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch {
    return resolve(dir);
  }
}

/**
 * One PID per mount namespace on this machine (containers included) that has an overlay mounted
 * with the superblock option OPTION, e.g. `upperdir=/x/upper` (from /proc/PID/mountinfo, proc(5)).
 * Used to refuse deleting a layer that a container still uses.
 */
export async function overlayUsers(option: string): Promise<number[]> {
  const seen = new Set<string>();
  const users: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ns = await readlink(`/proc/${name}/ns/mnt`).catch(() => undefined);
    if (ns === undefined || seen.has(ns)) continue;
    seen.add(ns);
    const text = await readFile(`/proc/${name}/mountinfo`, 'utf8').catch(() => '');
    const hit = text.split('\n').some((line) => {
      const [fsType, , opts] = (line.split(' - ')[1] ?? '').split(' ');
      return fsType === 'overlay' && (opts ?? '').split(',').includes(option);
    });
    if (hit) users.push(Number(name));
  }
  return users;
}

/** Mount points at or below DIR, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const root = await realDir(dir);
  const points = (await mountTable())
    .map((m) => m.mountPoint)
    .filter((p) => p === root || p.startsWith(root + sep));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function isMountPoint(dir: string): Promise<boolean> {
  const root = await realDir(dir);
  return (await mountTable()).some((m) => m.mountPoint === root);
}

/**
 * Unmounts everything at or below DIR, deepest first (umount(8)). A busy mount is retried for a few
 * seconds (a container that just exited may still hold it), then detached lazily (umount -l).
 */
export async function unmountAll(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    let done = false;
    for (let i = 0; i < 15 && !done; i++) {
      done = (await execa('umount', [point], { reject: false })).exitCode === 0;
      if (!done) await sleep(200);
    }
    if (!done) await execa('umount', ['-l', point]);
  }
}

/**
 * Deletes DIR and everything in it, after unmounting whatever is mounted below it. Refuses (throws)
 * when a mount is still there: `rm -r` through a mount would delete someone else's files.
 */
export async function removeTree(dir: string): Promise<void> {
  await unmountAll(dir);
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new Error(`not deleting ${dir}: still mounted at ${left.join(', ')}`);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Writes FILE at REL inside the root file system ROOT without following symlinks: a container may
 * have turned a path of its own into a link to the host's files. Missing folders are made (0755).
 */
export async function writeInRoot(root: string, rel: string, content: string, mode = 0o644): Promise<void> {
  const target = join(root, rel);
  if (relative(root, target).startsWith('..')) throw new Error(`${rel} is outside ${root}`);
  let dir = root;
  for (const part of relative(root, dirname(target)).split(sep).filter(Boolean)) {
    dir = join(dir, part);
    const st = await lstat(dir).catch(() => undefined);
    if (!st) await mkdir(dir, { mode: 0o755 });
    else if (!st.isDirectory()) throw new Error(`refusing to write ${target}: ${dir} is not a plain folder`);
  }
  const st = await lstat(target).catch(() => undefined);
  if (st?.isSymbolicLink()) await unlink(target);
  else if (st && !st.isFile()) throw new Error(`refusing to write ${target}: not a plain file`);
  await writeFile(target, content, { mode });
  await chmod(target, mode); // writeFile's mode applies only to a new file
}

/** Debian packages this machine needs for the lab (source: the tools each step runs). */
export const MACHINE_PACKAGES = ['debootstrap', 'systemd-container', 'apt-cacher-ng', 'iproute2', 'openssh-client'] as const;

/**
 * Installs the PACKAGES that dpkg does not list as installed (`apt-get install -y`; `apt-get update`
 * first, only when something is missing). Throws with apt's output when the install fails.
 */
export async function ensurePackages(packages: readonly string[], log: (line: string) => void): Promise<void> {
  const r = await execa('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\n', ...packages], { reject: false });
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => / ii ?$/.test(l))
      .map((l) => l.split(' ')[0]),
  );
  const missing = packages.filter((p) => !installed.has(p));
  if (missing.length === 0) return;
  log(`installing on this machine: ${missing.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await execa('apt-get', ['update'], { env });
  await execa('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env });
}
