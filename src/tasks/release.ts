/**
 * A folder tree shipped as a release: uploaded once into `<releasesDir>/<revision>/`, then a symlink
 * switched to it atomically (`ln -s` to a temp name, then `mv -T` over the link: rename(2) replaces
 * the link in one step, so a reader sees the old tree or the new one, never a mix). The revision is
 * the tree's content hash, so a re-run with the same tree compares one fact and does nothing.
 */
import { gzipSync } from 'node:zlib';
import { posix } from 'node:path';
import { sh, type Cmd } from '../core/cmd.js';
import { exec, type Op } from '../core/op.js';
import { privateDirCmd, SCRATCH_DIR } from '../core/private-dir.js';
import type { Fact } from '../facts/fact.js';
import { sha256 } from './file.js';
import type { ManagedFile, Task, TaskPlan } from './task.js';

/** One regular file of a tree: `path` is relative, `/`-separated, without `.` or `..` segments. */
export interface TreeFile {
  path: string;
  content: Buffer;
  /** Any execute bit set on the source: the file gets 0755 instead of 0644. */
  executable: boolean;
}

/** A tree of regular files and its revision ({@link treeRevision}). */
export interface FileTree {
  revision: string;
  files: readonly TreeFile[];
}

/** Length of a revision in hex digits (64 bits of the sha256: a folder name people can read). */
export const REVISION_LENGTH = 16;

/**
 * The content hash of a tree: sha256 over each file's path, mode and content sha256, in path order,
 * cut to {@link REVISION_LENGTH} hex digits. Equal trees give equal revisions whatever the file
 * times or the order they were read in. Throws on a path that is absolute or has `.`/`..` segments.
 */
export function treeRevision(files: readonly TreeFile[]): string {
  const lines = [...files]
    .map((f) => {
      checkRelative(f.path);
      return `${f.path}\0${f.executable ? '755' : '644'}\0${sha256(f.content)}\n`;
    })
    .sort();
  return sha256(lines.join('')).slice(0, REVISION_LENGTH);
}

/** A tree with its revision computed. */
export function fileTree(files: readonly TreeFile[]): FileTree {
  return { revision: treeRevision(files), files: [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) };
}

function checkRelative(p: string): void {
  if (p === '' || p.startsWith('/') || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`tree path "${p}" must be relative, without empty, . or .. segments`);
  }
}

/**
 * The tree as a gzipped POSIX ustar archive (POSIX.1-2017 XCU pax, "ustar Interchange Format"):
 * regular files only, owner 0:0, mtime 0 (extract with `tar -m` so files get the time of the
 * release: Airflow re-parses a DAG file whose mtime changed). Paths longer than 100 bytes use the
 * 155-byte prefix field; longer ones throw.
 */
export function tarGz(files: readonly TreeFile[]): Buffer {
  const blocks: Buffer[] = [];
  for (const f of files) {
    checkRelative(f.path);
    const header = Buffer.alloc(512);
    let name = f.path;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', name.length - 1);
      for (let i = cut; i > 0; i = name.lastIndexOf('/', i - 1)) {
        if (Buffer.byteLength(name.slice(i + 1)) <= 100 && Buffer.byteLength(name.slice(0, i)) <= 155) {
          prefix = name.slice(0, i);
          name = name.slice(i + 1);
          break;
        }
      }
      if (Buffer.byteLength(name) > 100) throw new Error(`path too long for a tar archive: ${f.path}`);
    }
    const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
    header.write(name, 0, 100, 'utf8');
    header.write(octal(f.executable ? 0o755 : 0o644, 8), 100, 8, 'ascii');
    header.write(octal(0, 8), 108, 8, 'ascii');
    header.write(octal(0, 8), 116, 8, 'ascii');
    header.write(octal(f.content.length, 12), 124, 12, 'ascii');
    header.write(octal(0, 12), 136, 12, 'ascii');
    header.write('        ', 148, 8, 'ascii');
    header.write('0', 156, 1, 'ascii');
    header.write('ustar\0', 257, 6, 'ascii');
    header.write('00', 263, 2, 'ascii');
    header.write('root', 265, 32, 'ascii');
    header.write('root', 297, 32, 'ascii');
    header.write(prefix, 345, 155, 'utf8');
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    blocks.push(header, f.content);
    const pad = (512 - (f.content.length % 512)) % 512;
    if (pad) blocks.push(Buffer.alloc(pad));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

/** Where a release link points now: `link` = a symlink and its target; `dir` = a real directory. */
export interface LinkState {
  kind: 'link' | 'dir' | 'other' | 'absent';
  target?: string;
}

/** Fact: what `link` is (`readlink`, man readlink(1)). One short line, so a no-op run costs almost nothing. */
export function linkFact(link: string): Fact<LinkState> {
  return {
    key: `release-link:${link}`,
    cmd: sh`l=${link}; if [ -L "$l" ]; then printf 'link|%s\\n' "$(readlink "$l")"; elif [ -d "$l" ]; then echo dir; elif [ -e "$l" ]; then echo other; else echo absent; fi`,
    parse(stdout) {
      const line = stdout.split('\n')[0] ?? '';
      if (line.startsWith('link|')) return { kind: 'link', target: line.slice(5) };
      if (line === 'dir' || line === 'other') return { kind: line };
      return { kind: 'absent' };
    },
  };
}

/** A release to ship: the tree, the link that points at the current release, where releases live. */
export interface ReleaseSpec {
  /** The path readers use, e.g. `/opt/airflow/dags` (becomes a symlink). */
  link: string;
  /** Folder of the releases, e.g. `/opt/airflow/dags-releases`. */
  releasesDir: string;
  tree: FileTree;
  /** Releases kept after a switch (the current one included; older ones are removed, newest first kept). */
  keep: number;
  /** Label for people, e.g. `DAG release`. */
  label?: string;
  /** Root-only folder where the archive waits (default {@link SCRATCH_DIR}; tests point it elsewhere). */
  scratchDir?: string;
}

/** Path of the tree's release folder. */
export function releasePath(spec: Pick<ReleaseSpec, 'releasesDir' | 'tree'>): string {
  return `${spec.releasesDir}/${spec.tree.revision}`;
}

/** The ops that leave the tree's archive in the root-only scratch folder, at the returned path (removed by the command that unpacks it). */
function uploadArchive(spec: ReleaseSpec, what: string): { archive: string; ops: Op[] } {
  const dir = spec.scratchDir ?? SCRATCH_DIR;
  const archive = `${dir}/${what}-${spec.tree.revision}.tgz`;
  return {
    archive,
    ops: [exec(privateDirCmd(dir, `${what} archives`)), { kind: 'put', path: archive, content: tarGz(spec.tree.files), mode: '0600', owner: 'root', group: 'root' }],
  };
}

/**
 * The command that exits 1, naming the folder, when one of `dirs` that exists is a symlink, not a
 * directory, not root's, or writable by its group or others: root unpacks, links and removes in
 * these folders, so no other account may be able to swap what is in them (a symlink to `/` in
 * place of the releases folder would make the pruning delete top-level folders).
 */
export function rootFolderGuard(dirs: readonly string[], what: string): Cmd {
  return sh`for d in ${[...new Set(dirs)]}; do if { [ -e "$d" ] || [ -L "$d" ]; } && [ -n "$(find "$d" -maxdepth 0 \\( ! -type d -o ! -user root -o -perm /022 \\) -print)" ]; then echo "$d" ${`is a symlink, not a directory, or not root's alone (another owner, or group/other may write): refusing to ${what} there; make it a folder only root can write`} >&2; exit 1; fi; done`;
}

/**
 * Task: the tree's release folder exists and `link` points to it. A change uploads the tree as one
 * archive (one transfer whatever the number of files) into the root-only scratch folder, unpacks it
 * into `<rev>.partial` and renames that to `<rev>` (a half-unpacked release is never used), switches
 * the link atomically, then removes all but the `keep` newest releases (never the current one). A
 * real directory at `link` is replaced only when empty; one with files makes the task fail (move
 * them into the source first). The releases folder, and the folders holding it and the link, must
 * be root's alone ({@link rootFolderGuard}); otherwise the task fails before it changes anything.
 */
export function release(spec: ReleaseSpec): Task {
  const fact = linkFact(spec.link);
  const target = releasePath(spec);
  const partial = `${target}.partial`;
  const tmpLink = `${spec.link}.airflow-ha-new`;
  const guard = rootFolderGuard([posix.dirname(spec.releasesDir), posix.dirname(spec.link), spec.releasesDir], 'unpack, link or remove releases');
  return {
    name: `${spec.label ?? 'release'} ${spec.link} -> ${target}`,
    facts: () => [fact],
    files: (): ManagedFile[] =>
      spec.tree.files.map((f) => ({ path: `${target}/${f.path}`, content: f.content, mode: f.executable ? '0755' : '0644', owner: 'root', group: 'root' })),
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      if (cur.kind === 'link' && cur.target === target) return { changed: false, ops: [], changes: [], notify: [] };
      if (cur.kind === 'other') throw new Error(`${spec.link} exists and is neither a directory nor a symlink: refusing to replace it`);
      const { archive, ops: upload } = uploadArchive(spec, 'release');
      const ops: Op[] = [
        ...upload,
        // Unpacked even if <rev> exists from an earlier run: same revision, same content; the rename
        // below then fails on a non-empty <rev>, so an existing one is kept instead.
        exec(
          sh`set -e; ${guard}; install -d -m 0755 -o root -g root ${spec.releasesDir}; ${guard}; rm -rf ${partial}; install -d -m 0755 ${partial}; tar -xzmf ${archive} -C ${partial} --no-same-owner; rm -f ${archive}; if [ -d ${target} ]; then rm -rf ${partial}; else mv -T ${partial} ${target}; fi`,
        ),
        exec(
          sh`set -e; ${guard}; if [ -d ${spec.link} ] && [ ! -L ${spec.link} ]; then rmdir ${spec.link} || { echo ${`${spec.link} is a directory with files in it: move them into the DAG source, then remove it`} >&2; exit 1; }; fi; ln -sfn ${target} ${tmpLink}; mv -T ${tmpLink} ${spec.link}`,
        ),
        exec(
          sh`${guard} && cd -P ${spec.releasesDir} && find . -mindepth 1 -maxdepth 1 -type d ! -name ${spec.tree.revision} ! -name '*.partial' -printf '%T@ %f\\n' | sort -rn | tail -n +${spec.keep} | cut -d' ' -f2 | while read -r d; do rm -rf -- "$d"; done`,
        ),
      ];
      const was = cur.kind === 'link' ? `was ${cur.target}` : cur.kind === 'dir' ? 'was a directory' : 'new';
      return {
        changed: true,
        ops,
        changes: [`release ${spec.tree.revision} (${spec.tree.files.length} files) and switch ${spec.link} to it (${was})`],
        notify: [],
      };
    },
  };
}

/**
 * Task: the tree's Python files compile with the host's Python, checked in a temp folder before any
 * host switches to it (`python -m compileall -q`, https://docs.python.org/3/library/compileall.html:
 * exit 1 and the file and line of each error). `python` is the first executable of `pythons`. Runs
 * only when `link` does not point at this revision yet; never a change. Fails naming the file and line.
 *
 * The files are DAG code, so they are compiled as `user` (the Airflow account, which runs them
 * anyway), never as root: `runuser -u USER --`, Python isolated (`-I`: no PYTHON* variables, no
 * user site, neither the working directory nor the script's on sys.path; docs.python.org/3/using/cmdline.html),
 * from `/` (a `compileall.py` in the tree is never imported), byte code written under the copy's
 * own `-X pycache_prefix` folder. The copy is unpacked by root into a `mktemp -d` folder (0711: the
 * account can read the files it is given, not list or change the folder).
 */
export function compileCheck(spec: ReleaseSpec & { pythons: readonly string[]; user: string }): Task {
  const fact = linkFact(spec.link);
  const target = releasePath(spec);
  return {
    name: `python files of release ${spec.tree.revision} compile`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      if (cur.kind === 'link' && cur.target === target) return { changed: false, ops: [], changes: [], notify: [] };
      const { archive, ops: upload } = uploadArchive(spec, 'check');
      return {
        changed: false,
        ops: [
          ...upload,
          exec(
            sh`t=$(mktemp -d) && trap 'rm -rf "$t"' EXIT && chmod 0711 "$t" && mkdir "$t/tree" && tar -xzf ${archive} -C "$t/tree" --no-same-owner && rm -f ${archive} && install -d -m 0700 -o ${spec.user} "$t/pycache" && cd / || exit 1; py=; for p in ${[...spec.pythons]}; do if command -v "$p" >/dev/null 2>&1; then py=$p; break; fi; done; [ -n "$py" ] || { echo 'no python to compile the DAG files with' >&2; exit 1; }; if ! out=$(runuser -u ${spec.user} -- "$py" -I -X pycache_prefix="$t/pycache" -m compileall -q "$t/tree" 2>&1); then printf 'DAG files that do not compile (release not switched anywhere):\\n%s\\n' "$(printf '%s\\n' "$out" | sed "s#$t/tree/##g")" >&2; exit 1; fi`,
          ),
        ],
        changes: [],
        notify: [],
      };
    },
  };
}
