import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import { sh, type Cmd } from '../core/cmd.js';
import { privateDirCmd, SCRATCH_DIR } from '../core/private-dir.js';
import { REDACTED } from '../core/secret.js';
import { exec, type Op } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import type { Handler, ManagedFile, Task, TaskPlan } from './task.js';

/** What a host holds at a path. `content` is present only when asked for and the sha256 differs. */
export interface PathState {
  exists: boolean;
  /** `regular file`, `directory`, `symbolic link`, ... as `stat -c %F` prints it. */
  type?: string;
  /** Octal permission bits without leading zero, as `stat -c %a` prints them (e.g. `644`). */
  mode?: string;
  owner?: string;
  group?: string;
  sha256?: string;
  content?: Buffer;
}

/** Largest file whose content a fact brings back for a diff, in bytes. */
export const MAX_DIFF_BYTES = 1024 * 1024;

/**
 * Fact: stat + sha256 of `path`, and its content (base64) when the sha256 is not `expectedSha`
 * (pass null to always fetch it). One command, so a no-op run transfers no file content.
 */
export function pathFact(path: string, expectedSha: string | null): Fact<PathState> {
  const want = expectedSha ?? '-';
  return {
    key: `path:${path}:${want}`,
    cmd: sh`p=${path}; if [ -e "$p" ] || [ -L "$p" ]; then s=$(stat -c '%a|%U|%G|%F' "$p"); h=-; if [ -f "$p" ]; then h=$(sha256sum < "$p" | cut -c1-64); fi; printf 'present|%s|%s\\n' "$s" "$h"; if [ -f "$p" ] && [ "$h" != ${want} ]; then head -c ${MAX_DIFF_BYTES} "$p" | base64 -w0; fi; else echo absent; fi`,
    parse(stdout) {
      const nl = stdout.indexOf('\n');
      const first = nl < 0 ? stdout.trim() : stdout.slice(0, nl);
      if (first !== 'present' && !first.startsWith('present|')) return { exists: false };
      const [, mode, owner, group, type, sha] = first.split('|');
      const b64 = nl < 0 ? '' : stdout.slice(nl + 1).trim();
      return {
        exists: true,
        type,
        mode,
        owner,
        group,
        sha256: sha === '-' ? undefined : sha,
        content: type === 'regular file' && sha !== want ? Buffer.from(b64, 'base64') : undefined,
      };
    },
  };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `0644` and `644` compare equal. */
export function sameMode(a: string | undefined, b: string): boolean {
  return a !== undefined && parseInt(a, 8) === parseInt(b, 8);
}

/**
 * A unified diff (3 lines of context, like `diff -u` and Ansible's --diff) of a file's old and new text.
 * Binary content is summarised instead.
 */
export function unifiedDiff(path: string, before: Buffer | undefined, after: Buffer): string {
  const isText = (b: Buffer) => !b.subarray(0, 8000).includes(0);
  if ((before && !isText(before)) || !isText(after)) return `Binary file ${path} changed\n`;
  return createTwoFilesPatch(
    before ? `a${path}` : '/dev/null',
    `b${path}`,
    before ? before.toString('utf8') : '',
    after.toString('utf8'),
    undefined,
    undefined,
    { context: 3 },
  ).replace(/^=+\n/, '');
}

/**
 * What a diff of a file that holds secrets shows when no redacted rendering of it is known: value
 * masking knows only the current secrets, so a line holding an old password (a rotated value,
 * another cluster's file) would print it. Only the count of changed lines is given.
 */
export function hiddenDiff(path: string, before: Buffer | undefined, after: Buffer): string {
  const patch = unifiedDiff(path, before, after);
  if (patch.startsWith('Binary file')) return `${path}: content hidden: holds secrets (binary)\n`;
  const changed = patch.split('\n').filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l)).length;
  return `${path}: content hidden: holds secrets; ${changed} line(s) changed\n`;
}

/**
 * `text` (a host's copy of a file) with the secrets at the places `redacted` (the file's redacted
 * rendering) marks replaced by `***`. A line that matches a secret-bearing line of `redacted` except
 * for its secrets gets exactly those parts replaced; a line that starts like one (same key, other
 * text after the secret) is cut after the key. Other lines are kept as they are.
 */
export function redactLike(text: string, redacted: string): string {
  const carriers = redacted.split('\n').filter((l) => l.includes(REDACTED));
  if (carriers.length === 0) return text;
  const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const exact = carriers.map((l) => ({ parts: l.split(REDACTED), re: new RegExp(`^${l.split(REDACTED).map(escape).join('(.*?)')}$`) }));
  const keys = [...new Set(carriers.map((l) => (l.split(REDACTED)[0] as string).trimStart()).filter((k) => k.trim() !== ''))];
  return text
    .split('\n')
    .map((line) => {
      for (const e of exact) if (e.re.test(line)) return e.parts.join(REDACTED);
      const body = line.trimStart();
      const key = keys.find((k) => body.startsWith(k));
      return key === undefined ? line : `${line.slice(0, line.length - body.length)}${key}${REDACTED}`;
    })
    .join('\n');
}

/** Desired state of a regular file. */
export interface FileSpec {
  path: string;
  content: string | Buffer;
  /** Octal, e.g. `0644`. Default `0644`. */
  mode?: string;
  owner?: string;
  group?: string;
  /** Handlers to run when the file changed (e.g. restart the service that reads it). */
  notify?: Handler[];
  /** A command that must accept the new content before it replaces the old, `%s` = a temp copy of it
   *  (e.g. `haproxy -c -f %s`). Runs only when the content changes. */
  validate?: (tempPath: string) => import('../core/cmd.js').Cmd;
  /** Label for people; default `file PATH`. */
  label?: string;
  /**
   * The content holds secrets. With `redacted` (the content with every secret as `***`), the diff
   * compares that with the host's copy redacted alike ({@link redactLike}); without, it shows no
   * line, only how many changed ({@link hiddenDiff}).
   */
  holdsSecrets?: boolean;
  redacted?: string;
  /** Root-only folder of the validate copy (default {@link SCRATCH_DIR}; tests point it elsewhere). */
  scratchDir?: string;
}

/**
 * Task: a regular file with exact content, owner, group and mode. Compared by sha256; a change is
 * written atomically (temp + rename) and shown as a unified diff (or, for a file that holds
 * secrets, as the count of changed lines).
 */
export function file(spec: FileSpec): Task {
  const content = typeof spec.content === 'string' ? Buffer.from(spec.content, 'utf8') : spec.content;
  const mode = spec.mode ?? '0644';
  const owner = spec.owner ?? 'root';
  const group = spec.group ?? 'root';
  const digest = sha256(content);
  const fact = pathFact(spec.path, digest);
  return {
    name: spec.label ?? `file ${spec.path}`,
    facts: () => [fact],
    files: (): ManagedFile[] => [{ path: spec.path, content, mode, owner, group }],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      const changes: string[] = [];
      const ops: Op[] = [];
      let diff: string | undefined;
      if (cur.exists && cur.type !== 'regular file') {
        throw new Error(`${spec.path} exists and is a ${cur.type}, not a regular file: refusing to replace it`);
      }
      const contentChanged = !cur.exists || cur.sha256 !== digest;
      const metaChanged = cur.exists && (!sameMode(cur.mode, mode) || cur.owner !== owner || cur.group !== group);
      if (contentChanged) {
        changes.push(cur.exists ? `update ${spec.path}` : `create ${spec.path}`);
        const before = cur.exists ? cur.content : undefined;
        diff = !spec.holdsSecrets
          ? unifiedDiff(spec.path, before, content)
          : spec.redacted === undefined
            ? hiddenDiff(spec.path, before, content)
            : unifiedDiff(spec.path, before && Buffer.from(redactLike(before.toString('utf8'), spec.redacted)), Buffer.from(spec.redacted));
        if (spec.validate) {
          // In root's own folder, not /tmp: there another account could take the name first.
          const scratch = spec.scratchDir ?? SCRATCH_DIR;
          const tmp = `${scratch}/validate-${digest.slice(0, 16)}`;
          ops.push(exec(privateDirCmd(scratch, 'validate copies')));
          ops.push({ kind: 'put', path: tmp, content, mode: '0600', owner: 'root', group: 'root' });
          // The check runs in a subshell so that an `exit` inside it cannot skip removing the temp
          // copy (which may hold secrets).
          ops.push(exec(sh`( ${spec.validate(tmp)} ); rc=$?; rm -f ${tmp}; exit "$rc"`));
        }
        ops.push({ kind: 'put', path: spec.path, content, mode, owner, group });
      } else if (metaChanged) {
        changes.push(`set ${spec.path} to ${owner}:${group} ${mode} (was ${cur.owner}:${cur.group} 0${cur.mode})`);
        ops.push(exec(setOwnerMode(spec.path, owner, group, mode)));
      }
      const changed = changes.length > 0;
      return { changed, ops, diff, ...(spec.holdsSecrets ? { diffRedacted: true } : {}), changes, notify: changed && contentChanged ? (spec.notify ?? []) : [] };
    },
  };
}

/**
 * Owner, group and mode of an existing `path` the facts saw as a file or directory (not a link):
 * `chown -h`, so a symlink swapped in meanwhile gets the owner itself, never the file it points to.
 */
function setOwnerMode(path: string, owner: string, group: string, mode: string): Cmd {
  return sh`chown -h ${`${owner}:${group}`} ${path} && chmod ${mode} ${path}`;
}

/** Desired state of a directory. */
export interface DirectorySpec {
  path: string;
  mode?: string;
  owner?: string;
  group?: string;
}

/** Task: a directory with owner, group and mode (parents created as needed, root-owned). */
export function directory(spec: DirectorySpec): Task {
  const mode = spec.mode ?? '0755';
  const owner = spec.owner ?? 'root';
  const group = spec.group ?? 'root';
  const fact = pathFact(spec.path, '-');
  return {
    name: `directory ${spec.path}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      if (!cur.exists) {
        return {
          changed: true,
          ops: [exec(sh`install -d -m ${mode} -o ${owner} -g ${group} ${spec.path}`)],
          changes: [`create directory ${spec.path}`],
          notify: [],
        };
      }
      if (cur.type !== 'directory') throw new Error(`${spec.path} exists and is a ${cur.type}, not a directory`);
      if (sameMode(cur.mode, mode) && cur.owner === owner && cur.group === group) {
        return { changed: false, ops: [], changes: [], notify: [] };
      }
      return {
        changed: true,
        ops: [exec(setOwnerMode(spec.path, owner, group, mode))],
        changes: [`set ${spec.path} to ${owner}:${group} ${mode} (was ${cur.owner}:${cur.group} 0${cur.mode})`],
        notify: [],
      };
    },
  };
}

/** The markers around a managed block, as Ansible's blockinfile writes them. */
export function blockMarkers(id: string): { begin: string; end: string } {
  return { begin: `# BEGIN airflow-ha ${id}`, end: `# END airflow-ha ${id}` };
}

/**
 * The text of a file with the managed block `id` set to `block` (replacing the block between the
 * markers, or appended at the end). Pure; used by {@link managedBlock}.
 */
export function withBlock(text: string, id: string, block: string): string {
  const { begin, end } = blockMarkers(id);
  const body = block.endsWith('\n') ? block : `${block}\n`;
  const wrapped = `${begin}\n${body}${end}\n`;
  const lines = text.split('\n');
  const b = lines.indexOf(begin);
  const e = b < 0 ? -1 : lines.indexOf(end, b + 1);
  if (b >= 0 && e > b) {
    const before = lines.slice(0, b).join('\n');
    const after = lines.slice(e + 1).join('\n');
    return `${before}${before ? '\n' : ''}${wrapped}${after}`;
  }
  const base = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  return `${base}${wrapped}`;
}

/** Desired state of a block of lines inside a file that something else also edits (e.g. /etc/hosts). */
export interface BlockSpec {
  path: string;
  /** Identifies the block; appears in its BEGIN/END marker lines. */
  id: string;
  block: string;
  /** Used when the file does not exist yet. */
  mode?: string;
  notify?: Handler[];
}

/**
 * Task: a managed block in a file. Lines outside the markers are kept; the new file is written
 * atomically with the file's current owner/group/mode.
 */
export function managedBlock(spec: BlockSpec): Task {
  const fact = pathFact(spec.path, null);
  return {
    name: `block "${spec.id}" in ${spec.path}`,
    facts: () => [fact],
    // For `render`: the managed block alone (the rest of the file belongs to the host).
    files: (): ManagedFile[] => [
      { path: spec.path, content: Buffer.from(withBlock('', spec.id, spec.block)), mode: spec.mode ?? '0644', owner: 'root', group: 'root' },
    ],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      const before = cur.exists ? (cur.content ?? Buffer.alloc(0)) : undefined;
      const next = Buffer.from(withBlock(before?.toString('utf8') ?? '', spec.id, spec.block), 'utf8');
      if (before && before.equals(next)) return { changed: false, ops: [], changes: [], notify: [] };
      return {
        changed: true,
        ops: [
          {
            kind: 'put',
            path: spec.path,
            content: next,
            mode: cur.exists && cur.mode ? `0${cur.mode}` : (spec.mode ?? '0644'),
            owner: cur.owner ?? 'root',
            group: cur.group ?? 'root',
          },
        ],
        diff: unifiedDiff(spec.path, before, next),
        changes: [`set block "${spec.id}" in ${spec.path}`],
        notify: spec.notify ?? [],
      };
    },
  };
}
