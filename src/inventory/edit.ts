/**
 * Edits of an inventory file that keep its comments, key order and layout (`add-worker`,
 * `remove-worker`): the document is parsed only to find where an entry starts and ends (the `yaml`
 * package's node ranges), then lines are inserted or cut; the rest of the text is never
 * re-serialised. Pure: text in, text out (validated with {@link parseInventory}); the caller writes
 * the file atomically.
 */
import { isMap, isSeq, parse, parseDocument, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { InputError } from '../core/errors.js';
import { parseInventory, type LoadedInventory } from './load.js';
import type { Host } from './schema.js';

/** The result of an edit: the new text, whether it differs from the old one, and the new text parsed and validated. */
export interface InventoryEdit {
  text: string;
  changed: boolean;
  loaded: LoadedInventory;
}

function hostsSeq(doc: Document, file: string): YAMLSeq {
  const hosts = doc.get('hosts', true);
  if (!isSeq(hosts)) throw new InputError(`${file}: \`hosts\` is not a list`);
  return hosts;
}

function hostIndex(seq: YAMLSeq, name: string): number {
  return seq.items.findIndex((item) => isMap(item) && (item as YAMLMap).get('name') === name);
}

/** The same host as far as an inventory entry says (name, address, roles in order, queues). */
function sameHost(a: Pick<Host, 'name' | 'address' | 'roles' | 'queues'>, b: Pick<Host, 'name' | 'address' | 'roles' | 'queues'>): boolean {
  return a.name === b.name && a.address === b.address && JSON.stringify(a.roles) === JSON.stringify(b.roles) && JSON.stringify(a.queues ?? []) === JSON.stringify(b.queues ?? []);
}

/** A YAML scalar as written in an inventory: plain when it reads back as the same string, else double-quoted. */
function scalar(v: string): string {
  return /^[A-Za-z0-9_.-]+$/.test(v) && parse(v) === v ? v : JSON.stringify(v);
}

const flowList = (items: readonly string[]) => `[${items.map(scalar).join(', ')}]`;

/** Byte offset of the start of the line holding `offset`. */
function lineStart(text: string, offset: number): number {
  return text.lastIndexOf('\n', offset - 1) + 1;
}

/** Byte offset just past the end of the line holding `offset` (after its newline, if any). */
function lineEnd(text: string, offset: number): number {
  const nl = text.indexOf('\n', offset);
  return nl < 0 ? text.length : nl + 1;
}

/**
 * Appends `host` to `hosts:` of the inventory `text` as new lines after the last entry, in that
 * entry's style (a one-line flow map `{ name: ..., ... }` if it is one, else a block map) and
 * indentation; every other byte of the file is kept. Adding a host that is already there,
 * identical, is no change (re-runs of add-worker); one that is there with other settings is an error.
 * @throws InputError (exit 2) when the name is taken by a different host, when `hosts:` is empty or
 *   not a block list, or when the result breaks a rule (e.g. an address outside the network or
 *   already used): its diagnostics give file:line:col and the rule.
 */
export function addHostToInventory(text: string, file: string, host: Pick<Host, 'name' | 'address' | 'roles' | 'queues'>): InventoryEdit {
  const current = parseInventory(text, file);
  const existing = current.inventory.hosts.find((h) => h.name === host.name);
  if (existing) {
    if (sameHost(existing, host)) return { text, changed: false, loaded: current };
    throw new InputError(
      `${file}: host ${host.name} is already in the inventory with other settings (address ${existing.address}, roles ${existing.roles.join(',')}${existing.queues ? `, queues ${existing.queues.join(',')}` : ''}): remove it first, or pick another name`,
    );
  }
  const doc = parseDocument(text);
  const seq = hostsSeq(doc, file);
  const last = seq.items[seq.items.length - 1];
  if (seq.flow || !isMap(last) || !last.range) throw new InputError(`${file}: \`hosts\` must be a block list of host entries to add one`);
  // The indentation of the last entry's dash, and of its keys.
  const start = lineStart(text, last.range[0]);
  const dashLine = text.slice(start, last.range[0]);
  const dash = /^(\s*)-\s*$/.exec(dashLine)?.[1] ?? dashLine.replace(/-.*$/, '');
  const fields: [string, string][] = [
    ['name', scalar(host.name)],
    ['address', scalar(host.address)],
    ['roles', flowList(host.roles)],
    ...(host.queues ? ([['queues', flowList(host.queues)]] as [string, string][]) : []),
  ];
  const entry = last.flow
    ? `${dash}- { ${fields.map(([k, v]) => `${k}: ${v}`).join(', ')} }\n`
    : fields.map(([k, v], i) => `${i === 0 ? `${dash}- ` : `${dash}  `}${k}: ${v}\n`).join('');
  const at = lineEnd(text, last.range[1] > 0 ? last.range[1] - 1 : last.range[1]);
  const head = text.slice(0, at);
  const out = `${head}${head.endsWith('\n') ? '' : '\n'}${entry}${text.slice(at)}`;
  // Throws with file:line:col if the new host breaks a rule.
  return { text: out, changed: true, loaded: parseInventory(out, file) };
}

/**
 * Removes host `name` from `hosts:`: the lines of its entry and the comment lines directly above
 * it (they describe it); every other byte of the file is kept. Removing a host that is not there is
 * no change.
 * @throws InputError (exit 2) when the result breaks a rule (e.g. the last host of a required role).
 */
export function removeHostFromInventory(text: string, file: string, name: string): InventoryEdit {
  const doc = parseDocument(text);
  const seq = hostsSeq(doc, file);
  const i = hostIndex(seq, name);
  if (i < 0) return { text, changed: false, loaded: parseInventory(text, file) };
  const item = seq.items[i] as YAMLMap;
  if (seq.flow || !item.range) throw new InputError(`${file}: \`hosts\` must be a block list to remove a host from it`);
  let from = lineStart(text, item.range[0]);
  // Comment lines right above the entry go with it.
  for (;;) {
    if (from === 0) break;
    const prev = lineStart(text, from - 1);
    if (!/^\s*#/.test(text.slice(prev, from))) break;
    from = prev;
  }
  const to = lineEnd(text, item.range[1] > 0 ? item.range[1] - 1 : item.range[1]);
  const out = text.slice(0, from) + text.slice(to);
  return { text: out, changed: true, loaded: parseInventory(out, file) };
}

/**
 * Sets `cluster.versions.airflow` to `version` (`upgrade`): the scalar's bytes are replaced in
 * place, in the quoting it had (its comments and every other byte kept); without the key, `airflow: VERSION` is added as
 * the last entry of a block `cluster.versions` map, in its indentation. Setting the value it
 * already has is no change.
 * @throws InputError (exit 2) when there is no block `cluster.versions` map to add it to, or when
 *   the result breaks a rule (e.g. rule `airflow:version` for an unsupported version).
 */
export function setAirflowVersion(text: string, file: string, version: string): InventoryEdit {
  const doc = parseDocument(text);
  const node = doc.getIn(['cluster', 'versions', 'airflow'], true) as { range?: [number, number, number]; value?: unknown } | undefined;
  let out: string;
  if (node && node.range) {
    if (String(node.value) === version) return { text, changed: false, loaded: parseInventory(text, file) };
    // In the quoting it was written in.
    const q = text[node.range[0]];
    const written = q === '"' ? JSON.stringify(version) : q === "'" ? `'${version}'` : scalar(version);
    out = text.slice(0, node.range[0]) + written + text.slice(node.range[1]);
  } else {
    const versions = doc.getIn(['cluster', 'versions'], true);
    if (!isMap(versions) || versions.flow || !versions.range || versions.items.length === 0) {
      throw new InputError(`${file}: add \`airflow: ${version}\` under cluster.versions (there is no block cluster.versions map to add it to)`);
    }
    const last = versions.items[versions.items.length - 1]!;
    const key = last.key as { range?: [number, number, number] };
    const start = lineStart(text, key.range![0]);
    const indent = text.slice(start, key.range![0]);
    const at = lineEnd(text, versions.range[1] > 0 ? versions.range[1] - 1 : versions.range[1]);
    const head = text.slice(0, at);
    out = `${head}${head.endsWith('\n') ? '' : '\n'}${indent}airflow: ${scalar(version)}\n${text.slice(at)}`;
  }
  return { text: out, changed: true, loaded: parseInventory(out, file) };
}
