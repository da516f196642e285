/**
 * A cgroup of its own for each lab container on a machine whose PID 1 is not systemd.
 * With `--keep-unit`, systemd-nspawn runs the container in the cgroup it was started in, below
 * `payload/` (man systemd-nspawn). Started from one shared cgroup, every container's systemd would
 * manage the same `payload/system.slice/*` folders and remove each other's: units then fail with
 * "Failed to attach to cgroup ... No such file or directory". So each container starts in
 * `airflow-ha-lab/<container>` of each hierarchy systemd uses: the cgroup2 one and, on a hybrid
 * machine, the v1 `name=systemd` one (cgroups(7); systemd's "hybrid" layout).
 * On a machine booted with systemd, nspawn gets a scope unit of its own instead (no --keep-unit).
 */
import { mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mountTable } from './local.js';

const GROUP = 'airflow-ha-lab';

/** True when systemd is PID 1 here (sd_booted(3): /run/systemd/system exists). */
export async function systemdBooted(): Promise<boolean> {
  return (await stat('/run/systemd/system').catch(() => undefined))?.isDirectory() === true;
}

/** Mount points of the cgroup hierarchies systemd uses: cgroup2, and cgroup v1 `name=systemd`. */
async function hierarchies(): Promise<string[]> {
  const points = (await mountTable())
    .filter((m) => m.fsType === 'cgroup2' || (m.fsType === 'cgroup' && m.superOptions.split(',').includes('name=systemd')))
    .map((m) => m.mountPoint);
  return [...new Set(points)];
}

/**
 * Creates CONTAINER's cgroup in each hierarchy (removing an empty leftover tree of a killed
 * container first) and returns their cgroup.procs files, for the container's process to join.
 */
export async function prepareContainerCgroups(container: string): Promise<string[]> {
  const out: string[] = [];
  for (const h of await hierarchies()) {
    const dir = join(h, GROUP, container);
    await removeCgroupTree(dir, 0).catch(() => undefined);
    await mkdir(dir, { recursive: true });
    out.push(join(dir, 'cgroup.procs'));
  }
  return out;
}

/**
 * Removes CONTAINER's cgroups (and the shared `airflow-ha-lab` folder once empty). A cgroup can only
 * be removed when no process is in it; a just-killed container's last tasks may take a moment, so
 * this retries for a few seconds, then leaves what it cannot remove (empty cgroups cost nothing and
 * the next boot of the container removes them).
 */
export async function removeContainerCgroups(container: string): Promise<void> {
  for (const h of await hierarchies()) {
    await removeCgroupTree(join(h, GROUP, container), 5_000).catch(() => undefined);
    await rmdir(join(h, GROUP)).catch(() => undefined);
  }
}

/** rmdir(2) DIR's sub-cgroups deepest first, then DIR; retries busy ones for up to MS milliseconds. */
async function removeCgroupTree(dir: string, ms: number): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (!entries) return;
  for (const e of entries) if (e.isDirectory()) await removeCgroupTree(join(dir, e.name), ms);
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (Date.now() >= deadline) throw e;
      await sleep(100);
    }
  }
}
