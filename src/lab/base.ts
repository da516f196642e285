/**
 * The cached Debian 12 root every lab host starts from (the read-only lower layer of its overlay).
 * Built once with debootstrap(8) into a temporary folder and renamed into place when complete, so an
 * interrupted build is never used. Never changed afterwards: overlayfs does not allow a lower layer
 * to change under a mounted overlay (Documentation/filesystems/overlayfs.rst, "Changes to underlying
 * filesystems").
 */
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { hostSourcesFile, type Mirrors } from './apt.js';
import { overlayUsers, processArgv, removeTree, writeInRoot } from './local.js';

/** Where cached base roots live unless the caller says otherwise. */
export const DEFAULT_CACHE_DIR = '/var/cache/airflow-ha/lab';

const BASE_NAME = 'bookworm-base';

/** Packages on top of debootstrap's minbase: an init, sshd, and what the playbooks need to start. */
export const BASE_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'iproute2',
  'sudo',
  'python3',
  'procps',
  'ca-certificates',
] as const;

/** Marker written last into a complete base root. */
const STAMP = 'etc/airflow-ha-lab-base';

export function baseRootPath(cacheDir: string): string {
  return join(cacheDir, BASE_NAME);
}

/** True when the base root in CACHEDIR exists and is complete. */
export async function haveBaseRoot(cacheDir: string): Promise<boolean> {
  return (await stat(join(baseRootPath(cacheDir), STAMP)).catch(() => undefined))?.isFile() === true;
}

/**
 * Returns the path of the cached base root in CACHEDIR, building it first when missing
 * (debootstrap --variant=minbase bookworm from this machine's mirror, about 45 s plus download).
 * Leftovers of builds whose process is gone are deleted first (after unmounting what debootstrap
 * had mounted in them). Throws with debootstrap's log tail when the build fails.
 */
export async function ensureBaseRoot(cacheDir: string, mirrors: Mirrors, log: (line: string) => void): Promise<string> {
  const root = baseRootPath(cacheDir);
  if (await haveBaseRoot(cacheDir)) return root;
  await mkdir(cacheDir, { recursive: true });
  await removeStaleBuilds(cacheDir);

  const tmp = join(cacheDir, `.${BASE_NAME}.tmp.${process.pid}`);
  await removeTree(tmp);
  const started = Date.now();
  log(`base root: debootstrap bookworm from ${mirrors.debian} into ${tmp} (once; about a minute)`);
  try {
    const r = await execa(
      'debootstrap',
      ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, 'bookworm', tmp, mirrors.debian],
      { reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive' } },
    );
    if (r.exitCode !== 0) {
      const dlog = await execa('tail', ['-n', '30', join(tmp, 'debootstrap/debootstrap.log')], { reject: false });
      throw new Error(`debootstrap failed (exit ${r.exitCode}):\n${(r.all ?? '').split('\n').slice(-15).join('\n')}\n${dlog.stdout}`);
    }
    await prepareBase(tmp, mirrors);
    await writeInRoot(tmp, STAMP, `built ${new Date().toISOString()} by airflow-ha lab from ${mirrors.debian}\n`);
    // Another `lab up` may have finished first: then keep its root and drop ours.
    await rename(tmp, root).catch(async (e: NodeJS.ErrnoException) => {
      if (!['ENOTEMPTY', 'EEXIST'].includes(e.code ?? '') || !(await haveBaseRoot(cacheDir))) throw e;
    });
  } finally {
    await removeTree(tmp);
  }
  log(`base root: ready in ${((Date.now() - started) / 1000).toFixed(0)} s at ${root}`);
  return root;
}

/** Deletes `.bookworm-base.tmp.PID` folders whose build process is gone. */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    const m = new RegExp(`^\\.${BASE_NAME}\\.tmp\\.(\\d+)$`).exec(name);
    if (m?.[1] && (Number(m[1]) === process.pid || !(await processArgv(Number(m[1]))))) {
      await removeTree(join(cacheDir, name));
    }
  }
}

/**
 * Turns debootstrap's output into a root that boots under systemd-nspawn with sshd and networkd.
 * Per-host files (hostname, machine-id, address, host keys, authorized_keys) go in each host's
 * upper layer instead.
 */
async function prepareBase(root: string, mirrors: Mirrors): Promise<void> {
  // minbase has no /etc/hosts.
  await writeInRoot(root, 'etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  await writeInRoot(root, 'etc/hostname', 'localhost\n');
  // The lab has no DNS server (no route out); names come from /etc/hosts. An empty resolv.conf makes
  // lookups of unknown names fail at once instead of timing out (resolv.conf(5): default 127.0.0.1).
  await writeInRoot(root, 'etc/resolv.conf', '# airflow-ha lab: no DNS server; names are in /etc/hosts\n');
  // An empty machine-id: each host writes its own in its upper layer (machine-id(5)).
  await writeInRoot(root, 'etc/machine-id', '', 0o444);
  await writeInRoot(
    root,
    'etc/ssh/sshd_config.d/10-airflow-ha-lab.conf',
    [
      '# airflow-ha lab: root logs in with the lab key only; each host has its own ed25519 and ecdsa host keys.',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UseDNS no',
      'HostKey /etc/ssh/ssh_host_ed25519_key',
      'HostKey /etc/ssh/ssh_host_ecdsa_key',
      '',
    ].join('\n'),
  );
  for (const f of await readdir(join(root, 'etc/ssh'))) {
    if (f.startsWith('ssh_host_')) await rm(join(root, 'etc/ssh', f));
  }
  await rm(join(root, 'etc/apt/sources.list'), { force: true });
  await writeInRoot(root, 'etc/apt/sources.list.d/debian.sources', hostSourcesFile(mirrors));
  await execa('systemctl', ['--root', root, 'enable', 'systemd-networkd.service', 'ssh.service']);
  // apt's daily timers would take the dpkg lock at random moments and fail the playbooks' apt runs.
  await execa('systemctl', ['--root', root, 'mask', 'apt-daily.timer', 'apt-daily-upgrade.timer']);
  await rm(join(root, 'var/cache/apt/archives'), { recursive: true, force: true });
  await mkdir(join(root, 'var/cache/apt/archives/partial'), { recursive: true });
}

/**
 * Deletes the cached base root in CACHEDIR unless an overlay of this machine still uses it as its
 * lower layer. Returns false (and deletes nothing) when it is in use.
 */
export async function purgeBaseRoot(cacheDir: string): Promise<boolean> {
  const root = baseRootPath(cacheDir);
  if ((await overlayUsers(`lowerdir=${root}`)).length > 0) return false;
  await removeTree(root);
  return true;
}
