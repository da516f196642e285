import { sh, type Cmd } from './cmd.js';

/**
 * Root's own scratch folder on a host: archives and validate copies wait there, root-only, under
 * names no other account can reach (so a fixed name is safe). Folders inside it come from
 * `mktemp -d`.
 */
export const SCRATCH_DIR = '/var/lib/airflow-ha/tmp';

/**
 * The command that makes `dir` a root-only folder (0700 root:root, parents created root's 0755):
 * it exits 1 without touching anything when `dir` is a symlink or not a directory (a planted link
 * would send root's writes elsewhere), naming the folder and `purpose` on stderr.
 */
export function privateDirCmd(dir: string, purpose: string): Cmd {
  return sh`d=${dir}; if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then echo "$d" ${`is a symlink or not a directory: refusing to use it for ${purpose}`} >&2; exit 1; fi; mkdir -p -- "$d" && chown -h root:root -- "$d" && chmod 0700 -- "$d"`;
}
