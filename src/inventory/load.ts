import { accessSync, constants, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Document, LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { InputError, type Diagnostic, type SourcePos } from '../core/errors.js';
import { firstControlChar } from '../core/text.js';
import { Inventory, patternRule, type Role } from './schema.js';
import { checkInventory, formatPath, suggest, type RoleNeed, type YamlPath } from './rules.js';

/** An inventory read from disk, validated, with defaults applied. */
export interface LoadedInventory {
  /** Absolute path of the inventory file. */
  file: string;
  /** Its folder. */
  dir: string;
  /** `<dir>/<basename without .yaml/.yml>.state`: secrets, known_hosts, journal live there. */
  stateDir: string;
  /** Parsed, defaults applied. */
  inventory: Inventory;
  /** Findings that do not stop a run (see rules.ts). */
  warnings: Diagnostic[];
  /** line/col of a YAML path such as `['hosts', 3, 'address']` (falls back to the nearest existing parent). */
  posOf(path: readonly (string | number)[]): SourcePos;
}

export interface LoadOptions {
  /** Roles the command about to run needs, alone or with the step that needs each; a missing one is an error (`role:required`). */
  requiredRoles?: readonly (Role | RoleNeed)[];
  /** Name of that command/playbook, for the message of `role:required` (e.g. `bootstrap`). */
  playbook?: string;
  /**
   * Check the local files the inventory names (`ssh.identityFile`, rule `ssh:identity-file`) on
   * this machine: relative paths against `dir`, `~/` against `home`. {@link loadInventory} checks
   * them against the inventory's folder and os.homedir() unless given `false`; parseInventory only
   * when given one.
   */
  localFiles?: LocalFiles | false;
}

/** Where the inventory's local paths are resolved from (see {@link LoadOptions.localFiles}). */
export interface LocalFiles {
  /** The inventory file's folder. */
  dir: string;
  /** The operator's home folder (`~`). */
  home: string;
}

/** The lab key's file name in the state folder (src/lab/lab.ts `labKeyFile`), which `lab up` creates. */
export const LAB_KEY_FILE = 'lab_ed25519';

/** `p` as written in an inventory (`~/x`, relative to the inventory, or absolute) as an absolute path. */
export function resolveLocalPath(p: string, files: LocalFiles): string {
  if (p === '~' || p.startsWith('~/')) return path.join(files.home, p.slice(1));
  return path.resolve(files.dir, p);
}

/** What is wrong with `file` as a file to read on this machine, or undefined when it is readable. */
function readableFileProblem(file: string): string | undefined {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : `cannot be read (${code ?? String(e)})`;
  }
  if (st.isDirectory()) return 'is a directory, not a key file';
  if (!st.isFile()) return 'is not a regular file';
  try {
    accessSync(file, constants.R_OK);
  } catch (e) {
    return `cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  return undefined;
}

/**
 * Reads, parses and validates an inventory file.
 * @throws InputError (exit 2) listing every error (and the warnings) as diagnostics.
 */
export async function loadInventory(file: string, opts: LoadOptions = {}): Promise<LoadedInventory> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    const why: Record<string, string> = { ENOENT: 'no such file', EISDIR: 'it is a directory, not an inventory file', EACCES: 'permission denied' };
    throw new InputError(`cannot read inventory ${file}: ${why[code] ?? code}`);
  }
  const localFiles = opts.localFiles ?? { dir: path.dirname(path.resolve(file)), home: os.homedir() };
  return parseInventory(decodeInventory(bytes, file), file, { ...opts, localFiles });
}

/**
 * The text of an inventory file's bytes: UTF-8 (a UTF-8 byte order mark is allowed).
 * @throws InputError (exit 2) with one diagnostic at the first offending byte's line and column:
 * `file:encoding` for a UTF-16 or UTF-32 byte order mark or bytes that are not UTF-8, `file:binary`
 * for a NUL byte (a binary file; YAML forbids NUL, YAML 1.2 section 5.1).
 */
export function decodeInventory(bytes: Uint8Array, file: string): string {
  const fail = (rule: string, message: string, pos: { line: number; col: number } = { line: 1, col: 1 }): never => {
    throw failure(file, [{ severity: 'error', pos: { file, ...pos }, path: '(document)', rule, message }]);
  };
  const bom = [...bytes.subarray(0, 4)].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');
  if (bom.startsWith('FF FE') || bom.startsWith('FE FF') || bom === '00 00 FE FF') {
    const kind = bom === 'FF FE 00 00' || bom === '00 00 FE FF' ? 'UTF-32' : 'UTF-16';
    fail('file:encoding', `the file is ${kind} (byte order mark ${bom.slice(0, kind === 'UTF-16' ? 5 : 11)}), not UTF-8: save it as UTF-8`);
  }
  const text = new TextDecoder('utf-8').decode(bytes);
  const nul = text.indexOf('\0');
  if (nul >= 0) fail('file:binary', 'the file holds a NUL byte: it is a binary file, not a YAML inventory', textPos(text, nul));
  // The first U+FFFD the decoder put in for bytes that are not UTF-8 (one written in the file as EF BF BD is not one).
  for (let i = text.indexOf('\uFFFD'); i >= 0; i = text.indexOf('\uFFFD', i + 1)) {
    const at = Buffer.byteLength(text.slice(0, i));
    if (bytes[at] === 0xef && bytes[at + 1] === 0xbf && bytes[at + 2] === 0xbd) continue;
    const byte = bytes[at]!.toString(16).toUpperCase().padStart(2, '0');
    fail('file:encoding', `byte 0x${byte} is not UTF-8 (a file saved as Latin-1 or Windows-1252?): save it as UTF-8`, textPos(text, i));
  }
  return text;
}

/** 1-based line and column (in characters) of `offset` in `text`. */
function textPos(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: before[before.length - 1]!.length + 1 };
}

/**
 * Parses and validates inventory text; no I/O. `file` is used for diagnostics (as given) and to
 * derive `file`/`dir`/`stateDir` (resolved against the current directory).
 * Three stages, each stopping the next when it finds errors: YAML (syntax, duplicate keys),
 * schema (zod), semantic rules (rules.ts).
 * @throws InputError with message `inventory FILE has N error(s)` and the diagnostics.
 */
export function parseInventory(text: string, file: string, opts: LoadOptions = {}): LoadedInventory {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: false });
  const src = new YamlSource(text, file, doc, lineCounter);
  const posOf = (p: readonly (string | number)[]): SourcePos => src.posOf(p);

  // 1. YAML
  const yamlErrors = src.yamlDiagnostics();
  const yamlWarnings = yamlErrors.filter((d) => d.severity === 'warning');
  fail(file, yamlErrors);

  // 2. Schema
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw failure(file, [{ severity: 'error', pos: { file, line: 1, col: 1 }, path: '(document)', rule: 'yaml:syntax', message: (e as Error).message }]);
  }
  const parsed = Inventory.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    throw failure(file, [...schemaDiagnostics(parsed.error.issues, data, src), ...yamlWarnings]);
  }
  const inventory = parsed.data;

  // 3. Semantic rules
  const findings = checkInventory(inventory, {
    file,
    posOf,
    requiredRoles: opts.requiredRoles,
    playbook: opts.playbook,
    valueAt: (p) => src.valueAt(p),
    ...(opts.localFiles ? { localFile: localFileCheck(opts.localFiles, file) } : {}),
  });
  const warnings = [...yamlWarnings, ...findings.filter((d) => d.severity === 'warning')];
  fail(file, [...findings, ...yamlWarnings]);

  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  // A wheelhouse folder is written relative to the inventory file, like an identity file.
  const install = inventory.cluster.airflow.install;
  if (install.wheelhouse !== undefined) install.wheelhouse = path.resolve(dir, install.wheelhouse);
  return { file: abs, dir, stateDir: stateDirOf(abs), inventory, warnings: sortDiagnostics(warnings), posOf };
}

/** RuleContext.localFile for an inventory `file` whose local paths resolve from `files`. */
function localFileCheck(files: LocalFiles, file: string): NonNullable<Parameters<typeof checkInventory>[1]['localFile']> {
  const labKey = path.join(stateDirOf(path.resolve(files.dir, path.basename(file))), LAB_KEY_FILE);
  return (written, { labKey: isLab }) => {
    const abs = resolveLocalPath(written, files);
    if (isLab && abs === labKey) return { path: abs };
    return { path: abs, problem: readableFileProblem(abs) };
  };
}

/** `<dir>/<basename without .yaml/.yml>.state` of an absolute inventory path. */
function stateDirOf(abs: string): string {
  return path.join(path.dirname(abs), `${path.basename(abs).replace(/\.ya?ml$/i, '')}.state`);
}

/** Throws when `diags` holds errors. */
function fail(file: string, diags: readonly Diagnostic[]): void {
  if (diags.some((d) => d.severity === 'error')) throw failure(file, diags);
}

/** The InputError for `diags`: errors first, then warnings, each in file order. */
function failure(file: string, diags: readonly Diagnostic[]): InputError {
  const errors = sortDiagnostics(diags.filter((d) => d.severity === 'error'));
  const warnings = sortDiagnostics(diags.filter((d) => d.severity === 'warning'));
  return new InputError(`inventory ${file} has ${errors.length} error(s)`, [...errors, ...warnings]);
}

function sortDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  return [...diags].sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
}

// ---------------------------------------------------------------------------------------------
// YAML positions

/** The parsed document plus what is needed to map paths to positions and source text. */
class YamlSource {
  constructor(
    readonly text: string,
    readonly file: string,
    readonly doc: Document.Parsed,
    readonly lines: LineCounter,
  ) {}

  pos(offset: number): SourcePos {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, col };
  }

  /**
   * The deepest node along `p` and the key node of the pair holding it.
   * `found` is how many path segments were matched.
   */
  walk(p: readonly (string | number)[]): { node: YamlNode | null; key: YamlNode | null; found: number } {
    let node: unknown = this.doc.contents;
    let key: YamlNode | null = null;
    let found = 0;
    for (const seg of p) {
      if (isAlias(node)) node = node.resolve(this.doc);
      if (isMap(node)) {
        const pair = node.items.find((it) => keyText(it.key) === String(seg));
        if (!pair) break;
        key = isScalar(pair.key) ? pair.key : null;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (item === undefined) break;
        key = null;
        node = item;
      } else break;
      found++;
    }
    return { node: (node as YamlNode | null) ?? null, key, found };
  }

  posOf(p: readonly (string | number)[]): SourcePos {
    const { node, key } = this.walk(p);
    // `key:` with no value has an empty null scalar after the colon: point at the key instead.
    const empty = !node || !node.range || node.range[0] === node.range[1];
    if (empty && key?.range) return this.pos(key.range[0]);
    if (node?.range) return this.pos(node.range[0]);
    return { file: this.file, line: 1, col: 1 };
  }

  /** Position of the key `p[last]` in its mapping (for unknown keys), else {@link posOf}. */
  keyPosOf(p: readonly (string | number)[]): SourcePos {
    const { key, found } = this.walk(p);
    if (found === p.length && key?.range) return this.pos(key.range[0]);
    return this.posOf(p);
  }

  /** The source text of the node at `p` when it is a scalar or a short one-line collection. */
  valueAt(p: readonly (string | number)[]): string | undefined {
    const { node, found } = this.walk(p);
    if (found !== p.length || !node?.range) return undefined;
    if (node.range[0] === node.range[1]) return undefined;
    const raw = this.text.slice(node.range[0], node.range[1]).trim();
    if (raw.includes('\n') || (!isScalar(node) && raw.length > 60)) return undefined;
    return raw;
  }

  /** YAML path of the innermost node whose range contains `offset` (for syntax errors). */
  pathAt(offset: number): (string | number)[] {
    const out: (string | number)[] = [];
    let node: unknown = this.doc.contents;
    for (;;) {
      if (isMap(node)) {
        const pair = node.items.find((it) => {
          const start = (it.key as YamlNode | null)?.range?.[0];
          const end = (it.value as YamlNode | null)?.range?.[2] ?? (it.key as YamlNode | null)?.range?.[2];
          return start !== undefined && end !== undefined && offset >= start && offset < Math.max(end, start + 1);
        });
        if (!pair) break;
        out.push(keyText(pair.key));
        node = pair.value;
      } else if (isSeq(node)) {
        const i = node.items.findIndex((it) => {
          const r = (it as YamlNode | null)?.range;
          return r != null && offset >= r[0] && offset < Math.max(r[2], r[0] + 1);
        });
        if (i < 0) break;
        out.push(i);
        node = node.items[i];
      } else break;
    }
    return out;
  }

  /** Syntax errors, duplicate keys and unknown aliases as errors; the parser's warnings as warnings. */
  yamlDiagnostics(): Diagnostic[] {
    const out: Diagnostic[] = [];
    for (const err of this.doc.errors) {
      const at = this.pathAt(err.pos[0]);
      if (err.code === 'DUPLICATE_KEY') {
        const last = at[at.length - 1];
        const name = typeof last === 'string' ? last : keyNameAt(this.text, err.pos[0]);
        const first = this.firstKeyOffset(at.slice(0, -1), name, err.pos[0]);
        const where = first === undefined ? '' : ` (first on line ${this.pos(first).line})`;
        out.push({
          severity: 'error',
          pos: this.pos(err.pos[0]),
          path: formatPath(at.length > 0 ? at : [name]),
          value: name,
          rule: 'yaml:duplicate-key',
          message: `duplicate key "${name}"${where}: YAML keys must be unique in a mapping`,
        });
      } else {
        out.push({
          severity: 'error',
          pos: this.pos(err.pos[0]),
          path: formatPath(at),
          rule: 'yaml:syntax',
          message: `YAML syntax error: ${err.message}`,
        });
      }
    }
    visit(this.doc, {
      Alias: (_key, alias) => {
        if (alias.resolve(this.doc) === undefined && alias.range) {
          out.push({
            severity: 'error',
            pos: this.pos(alias.range[0]),
            path: formatPath(this.pathAt(alias.range[0])),
            value: `*${alias.source}`,
            rule: 'yaml:syntax',
            message: `YAML syntax error: alias *${alias.source} names no anchor defined before it`,
          });
        }
      },
    });
    for (const w of this.doc.warnings) {
      out.push({
        severity: 'warning',
        pos: this.pos(w.pos[0]),
        path: formatPath(this.pathAt(w.pos[0])),
        rule: 'yaml:warning',
        message: w.message,
      });
    }
    return out;
  }

  /** Offset of the first key `name` in the mapping at `mapPath`, if it comes before `before`. */
  private firstKeyOffset(mapPath: (string | number)[], name: string, before: number): number | undefined {
    const { node, found } = this.walk(mapPath);
    if (found !== mapPath.length || !isMap(node)) return undefined;
    for (const it of node.items) {
      const r = (it.key as YamlNode | null)?.range;
      if (keyText(it.key) === name && r && r[0] < before) return r[0];
    }
    return undefined;
  }
}

function keyText(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  if (isPair(key)) return keyText(key.key);
  return String(key);
}

function keyNameAt(text: string, offset: number): string {
  return /^[^:\s]+/.exec(text.slice(offset))?.[0] ?? '?';
}

// ---------------------------------------------------------------------------------------------
// zod issues -> diagnostics

type Issue = z.core.$ZodIssue;

/**
 * One diagnostic per issue (per key for unknown keys). When an unknown key is a likely typo of a
 * missing required key (`adress` for `address`), only the unknown key is reported: its message
 * already names the fix, and "missing address" would send the reader looking for the wrong line.
 */
function schemaDiagnostics(issues: readonly Issue[], data: unknown, src: YamlSource): Diagnostic[] {
  const typoOf = new Set<string>();
  for (const issue of issues) {
    if (issue.code !== 'unrecognized_keys') continue;
    const p = issue.path.map((s) => (typeof s === 'number' ? s : String(s)));
    for (const k of issue.keys) {
      const hint = suggest(k, knownKeysAt(Inventory, p));
      if (hint !== undefined) typoOf.add(formatPath([...p, hint]));
    }
  }
  return issues
    .flatMap((i) => issueToDiagnostics(i, data, src))
    .filter((d) => !(d.rule === 'schema:required' && typoOf.has(d.path)));
}

function issueToDiagnostics(issue: Issue, data: unknown, src: YamlSource): Diagnostic[] {
  const p = issue.path.map((s) => (typeof s === 'number' ? s : String(s)));
  const base = (message: string, rule: string, at: readonly (string | number)[] = p, value = src.valueAt(at), keyPos = false): Diagnostic => ({
    severity: 'error',
    pos: keyPos ? src.keyPosOf(at) : src.posOf(at),
    path: formatPath(at),
    ...(value === undefined ? {} : { value }),
    rule,
    message,
  });
  const actual = getIn(data, p);

  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) => {
        const at = [...p, k];
        const known = knownKeysAt(Inventory, p);
        const hint = suggest(k, known);
        let message = `unknown key "${k}"${p.length > 0 ? ` in ${formatPath(p)}` : ''}`;
        if (k === '<<') message += ': YAML merge keys are not supported (the top-level `ssh` already sets defaults for every host)';
        else if (hint) message += `; did you mean "${hint}"?`;
        else if (known.length > 0) message += `; allowed keys: ${known.join(', ')}`;
        return base(message, 'schema:unrecognized_keys', at, k, true);
      });
    case 'invalid_type': {
      if (actual === undefined) {
        const last = p[p.length - 1];
        return [base(`missing required key "${String(last)}"`, 'schema:required', p, undefined)];
      }
      const expected = describeExpected(issue.expected);
      const got = describeValue(actual);
      let message = `expected ${expected}, got ${got}`;
      if (p.length === 0) message = actual === null ? 'the inventory is empty: expected a mapping with cluster, ssh and hosts' : `the inventory must be a mapping with cluster, ssh and hosts, not ${got}`;
      else if (actual === null) message += ' (the key has no value)';
      else if (issue.expected === 'string' && (typeof actual === 'number' || typeof actual === 'boolean')) {
        message += `: quote it, e.g. "${String(src.valueAt(p) ?? actual)}"`;
      }
      return [base(message, 'schema:invalid_type')];
    }
    case 'invalid_format': {
      // JSON quoting shows a newline or NUL as \n or \u0000 instead of breaking the message.
      const shown = typeof actual === 'string' ? JSON.stringify(actual) : 'the value';
      const formats: Record<string, string> = {
        ipv4: `${shown} is not an IPv4 address (four numbers 0-255 separated by dots, e.g. 10.0.0.5)`,
        cidrv4: `${shown} is not an IPv4 network in CIDR notation (address/prefix 0-32, e.g. 10.0.0.0/24)`,
        url: `${shown} is not a URL (e.g. http://10.0.0.1:3142)`,
      };
      if (issue.format === 'regex') {
        // A named pattern (schema.ts `pattern`) reports its own rule, and names the control character it found.
        const char = typeof actual === 'string' ? firstControlChar(actual) : undefined;
        const rule = patternRule((issue as { pattern?: string }).pattern ?? '') ?? 'schema:invalid_format';
        return [base(`${shown}${char ? ` holds ${char}` : ''}: ${issue.message}`, rule)];
      }
      return [base(formats[issue.format] ?? `${shown}: ${issue.message}`, 'schema:invalid_format')];
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum;
      const inclusive = issue.inclusive !== false;
      let message: string;
      if (issue.origin === 'array') {
        message = small ? `must list at least ${limit} item(s)` : `must list at most ${limit} item(s)`;
        if (small && p.length === 1 && p[0] === 'hosts') message = 'must list at least one host';
      } else if (issue.origin === 'string') {
        message = small ? (Number(limit) === 1 ? 'must not be empty' : `must be at least ${limit} characters`) : `must be at most ${limit} characters`;
      } else {
        const op = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
        message = `must be ${op} ${limit}`;
      }
      return [base(message, `schema:${issue.code}`)];
    }
    case 'invalid_value': {
      const values = issue.values.map(String);
      const shown = actual === undefined ? 'the value' : `"${String(actual)}"`;
      let message = `${shown} is not one of: ${values.join(', ')}`;
      const hint = typeof actual === 'string' ? suggest(actual, values) : undefined;
      if (hint) message += `; did you mean "${hint}"?`;
      return [base(message, 'schema:invalid_value')];
    }
    case 'custom': {
      const rule = (issue.params as { rule?: unknown } | undefined)?.rule;
      const shown = typeof actual === 'string' ? `${JSON.stringify(actual)} ` : '';
      return [base(`${shown}${issue.message}`, typeof rule === 'string' ? rule : 'schema:custom')];
    }
    default:
      return [base(issue.message, `schema:${issue.code}`)];
  }
}

function describeExpected(expected: string): string {
  const names: Record<string, string> = {
    object: 'a mapping (key: value)',
    array: 'a list',
    string: 'a string',
    number: 'a number',
    int: 'an integer',
    boolean: 'true or false',
  };
  return names[expected] ?? expected;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'an integer' : 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

function getIn(data: unknown, p: readonly (string | number)[]): unknown {
  let cur = data;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return cur;
}

/** The keys an object schema accepts at path `p` (unwrapping optional/default/array/record). */
function knownKeysAt(schema: z.ZodType, p: readonly (string | number)[]): string[] {
  let cur: unknown = schema;
  const unwrap = (s: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (s as { _zod?: { def?: { type?: string; innerType?: unknown } } })._zod?.def;
      if (def && ['optional', 'default', 'nullable', 'prefault', 'readonly', 'nonoptional', 'catch'].includes(def.type ?? '')) s = def.innerType;
      else break;
    }
    return s;
  };
  for (const seg of p) {
    cur = unwrap(cur);
    const def = (cur as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return [];
    if (def.type === 'object') cur = (def.shape as Record<string, unknown>)[String(seg)];
    else if (def.type === 'array') cur = def.element;
    else if (def.type === 'record') cur = def.valueType;
    else return [];
  }
  cur = unwrap(cur);
  const def = (cur as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : [];
}

export type { YamlPath };
