/**
 * The operator's OpenSSH client configuration (man ssh_config(5)), as airflow-ha reads it: parsed
 * by the `ssh-config` package, each directive given its line number, the few options airflow-ha
 * uses checked, and a lookup that gives, per option, the first value obtained in file order (the
 * rule of ssh_config(5): "the first obtained value will be used"). Pure: text in, values out.
 *
 * Read: HostName, User, Port, IdentityFile, ProxyJump, IdentityAgent, ConnectTimeout (and
 * ProxyCommand, only to say it is not used). Not read: `Match` blocks (skipped with a note: they
 * may run commands, `Match exec`), `Include` (noted, not followed), every other option.
 */
import { createHash } from 'node:crypto';
import SSHConfig, { LineType, type Line } from 'ssh-config';
import { InputError } from '../core/errors.js';
import { matchWildcard } from './hostkeys.js';

/** One value of one directive, with the 1-based line it is on. */
export interface SshConfigValue<T = string> {
  value: T;
  line: number;
}

/** One element of a ProxyJump list (ssh_config(5) ProxyJump: `[user@]host[:port]` or an `ssh://` URI). */
export interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

/**
 * What the configuration says about one host: the first value of each option airflow-ha reads
 * (IdentityFile: every value, in order), each with its line. `proxyJump` is `'none'` or a chain,
 * first hop first (`a,b`: a is reached first, b through a, the host through b).
 */
export interface SshConfigLookup {
  hostName?: SshConfigValue;
  user?: SshConfigValue;
  port?: SshConfigValue<number>;
  identityFiles: SshConfigValue[];
  proxyJump?: SshConfigValue<'none' | JumpSpec[]> & { text: string };
  identityAgent?: SshConfigValue;
  /** Seconds (ssh_config(5) ConnectTimeout). */
  connectTimeout?: SshConfigValue<number>;
  proxyCommand?: SshConfigValue;
}

interface Directive {
  key: string;
  value: string;
  line: number;
}

/** A `Host` block (patterns) or the directives before the first block (patterns null: every host). */
interface Block {
  patterns: string[] | null;
  directives: Directive[];
}

/** A parsed configuration file: its name (for messages), its blocks, and notes on what is not read. */
export interface ParsedSshConfig {
  file: string;
  blocks: Block[];
  /** `FILE line N: ...` for each Match block skipped and each Include not followed. */
  notes: string[];
}

const JUMP = /^(?:ssh:\/\/)?(?:([^@\s/]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s/[\]]+)(?::([0-9]{1,5}))?\/?$/;

/**
 * Parses a ProxyJump value: `none`, or comma-separated `[user@]host[:port]` / `ssh://[user@]host[:port]`.
 * @throws Error with the reason (the caller adds file and line).
 */
export function parseProxyJump(text: string): 'none' | JumpSpec[] {
  if (text.toLowerCase() === 'none') return 'none';
  return text.split(',').map((part) => {
    const m = JUMP.exec(part.trim());
    if (!m) throw new Error(`ProxyJump "${part}" is not [user@]host[:port]`);
    const port = m[3] === undefined ? undefined : Number(m[3]);
    if (port !== undefined && (port < 1 || port > 65535)) throw new Error(`ProxyJump "${part}": port ${port} is not 1-65535`);
    const host = (m[2] as string).replace(/^\[(.*)\]$/, '$1');
    return { ...(m[1] ? { user: m[1] } : {}), host, ...(port !== undefined ? { port } : {}) };
  });
}

/** The text of a directive's value as the parser left it (multi-value directives joined by spaces). */
function valueText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x: { val: string }) => x.val).join(' ');
  return '';
}

/** Newlines in a string. */
const newlines = (s: string | undefined) => (s ? s.split('\n').length - 1 : 0);

/**
 * Checks one directive's value the way ssh would at load time (ssh reports a bad value in any block,
 * matching or not). @throws Error with the reason.
 */
function checkValue(key: string, value: string): void {
  if (value === '') throw new Error(`${key}: missing argument`);
  if (key === 'port' && !(/^[0-9]{1,5}$/.test(value) && Number(value) >= 1 && Number(value) <= 65535)) throw new Error(`Port "${value}" is not a port number (1-65535)`);
  if (key === 'connecttimeout' && !(/^[0-9]+$/.test(value) && Number(value) > 0)) throw new Error(`ConnectTimeout "${value}" is not a whole number of seconds > 0`);
  if (key === 'proxyjump') parseProxyJump(value);
}

/** The options read (lower-cased keywords). */
const READ = new Set(['hostname', 'user', 'port', 'identityfile', 'proxyjump', 'identityagent', 'connecttimeout', 'proxycommand']);

/**
 * Parses the text of an ssh_config file.
 * @param file its path, for messages.
 * @throws InputError `FILE line N: reason` for a line ssh-config cannot parse (an unclosed quote,
 *   a Match without a value) or a bad value of an option airflow-ha reads (Port, ConnectTimeout,
 *   ProxyJump, or one without argument).
 */
export function parseSshConfig(text: string, file: string): ParsedSshConfig {
  let tree: SSHConfig;
  try {
    tree = SSHConfig.parse(text);
  } catch (e) {
    // The parser says what but not where; its errors are local to a line, so the first line that
    // does not parse alone is the one.
    const lines = text.split('\n');
    const at = lines.findIndex((l) => {
      try {
        SSHConfig.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    const reason = e instanceof TypeError ? 'missing argument' : (e as Error).message;
    throw new InputError(`${file}${at >= 0 ? ` line ${at + 1}` : ''}: cannot parse the SSH client configuration: ${reason}`);
  }
  const blocks: Block[] = [{ patterns: null, directives: [] }];
  const notes: string[] = [];
  let line = 1;
  const walk = (nodes: readonly Line[], block: Block | null): void => {
    for (const node of nodes) {
      line += newlines(node.before);
      const at = line;
      line += newlines(node.after);
      if (node.type !== LineType.DIRECTIVE) continue;
      const key = node.param.toLowerCase();
      const value = valueText(node.value);
      try {
        if (key === 'host' || key === 'match' || READ.has(key)) checkValue(key, value);
      } catch (e) {
        throw new InputError(`${file} line ${at}: ${(e as Error).message}`);
      }
      if ('config' in node) {
        if (key === 'match') {
          notes.push(`${file} line ${at}: Match blocks are not read by airflow-ha (skipped: "Match ${value}")`);
          walk(node.config, null);
        } else {
          const b: Block = { patterns: value.split(/\s+/).filter(Boolean), directives: [] };
          blocks.push(b);
          walk(node.config, b);
        }
        continue;
      }
      if (key === 'include') notes.push(`${file} line ${at}: Include is not followed by airflow-ha ("Include ${value}")`);
      if (block && READ.has(key)) block.directives.push({ key, value, line: at });
    }
  };
  walk(tree, blocks[0] as Block);
  return { file, blocks, notes };
}

/**
 * Whether a `Host` pattern list applies to a host known by any of `names` (its inventory name and
 * its address): some pattern matches one of the names and no negated pattern (`!pattern`) matches
 * any (ssh_config(5) PATTERNS; wildcards as OpenSSH's match.c, case-insensitive).
 */
export function hostPatternsMatch(patterns: readonly string[], names: readonly string[]): boolean {
  let positive = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (names.some((n) => matchWildcard(n, p.slice(1)))) return false;
    } else if (names.some((n) => matchWildcard(n, p))) positive = true;
  }
  return positive;
}

/** Lookup fields of the single-valued options, by lower-cased keyword. */
const STRINGS = { hostname: 'hostName', user: 'user', identityagent: 'identityAgent', proxycommand: 'proxyCommand' } as const;
const NUMBERS = { port: 'port', connecttimeout: 'connectTimeout' } as const;

/**
 * The values the configuration gives a host known by `names` (inventory name first, then its
 * address): the directives before the first `Host` and those of every `Host` block whose patterns
 * match one of the names, in file order; for each option the first value wins (IdentityFile: all
 * of them, in order). Match blocks are not consulted.
 */
export function lookupSshConfig(cfg: ParsedSshConfig, names: readonly string[]): SshConfigLookup {
  const out: SshConfigLookup = { identityFiles: [] };
  for (const b of cfg.blocks) {
    if (b.patterns !== null && !hostPatternsMatch(b.patterns, names)) continue;
    for (const d of b.directives) {
      if (d.key === 'identityfile') out.identityFiles.push({ value: d.value, line: d.line });
      else if (d.key === 'proxyjump') out.proxyJump ??= { value: parseProxyJump(d.value), line: d.line, text: d.value };
      else if (d.key in NUMBERS) out[NUMBERS[d.key as keyof typeof NUMBERS]] ??= { value: Number(d.value), line: d.line };
      else if (d.key in STRINGS) out[STRINGS[d.key as keyof typeof STRINGS]] ??= { value: d.value, line: d.line };
    }
  }
  return out;
}

/** Local facts the `%` tokens of ssh_config(5) TOKENS refer to. */
export interface TokenValues {
  /** `%h`: the remote host name (after HostName). */
  host: string;
  /** `%n`: the host name as given (the inventory name, or the jump host as written). */
  original: string;
  /** `%p`: the remote port. */
  port: number;
  /** `%r`: the remote user. */
  user: string;
  /** `%j`: the ProxyJump value, or ''. */
  jump: string;
  /** `%d`: the local home directory. */
  home: string;
  /** `%u`: the local user name. */
  localUser: string;
  /** `%i`: the local user id. */
  uid: number;
  /** `%l`: the local host name (with domain); `%L` is its first label. */
  localHost: string;
}

/**
 * Expands `%` tokens (ssh_config(5) TOKENS: `%% %C %d %h %i %j %k %L %l %n %p %r %u`; `%C` is the
 * SHA-1 hex of `%l%h%p%r%j`, `%k` the name as given since airflow-ha reads no HostKeyAlias), `${VAR}`
 * environment references (ssh_config(5) ENVIRONMENT VARIABLES) and a leading `~` or `~/`.
 * @throws Error naming an unknown token or an unset variable.
 */
export function expandSshConfigPath(text: string, t: TokenValues, env: NodeJS.ProcessEnv): string {
  const tokens: Record<string, string> = {
    '%': '%',
    C: createHash('sha1').update(`${t.localHost}${t.host}${t.port}${t.user}${t.jump}`).digest('hex'),
    d: t.home,
    h: t.host,
    i: String(t.uid),
    j: t.jump,
    k: t.original,
    L: t.localHost.split('.')[0] ?? t.localHost,
    l: t.localHost,
    n: t.original,
    p: String(t.port),
    r: t.user,
    u: t.localUser,
  };
  let out = text.replace(/%(.?)/g, (_m, c: string) => {
    const v = tokens[c];
    if (v === undefined) throw new Error(`unknown token %${c} in "${text}" (ssh_config(5) TOKENS)`);
    return v;
  });
  out = out.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const v = env[name];
    if (v === undefined) throw new Error(`environment variable ${name} of "${text}" is not set`);
    return v;
  });
  if (out === '~') return t.home;
  if (out.startsWith('~/')) return `${t.home}${out.slice(1)}`;
  if (out.startsWith('~')) throw new Error(`"${text}": only ~ and ~/ are expanded (not another user's home)`);
  return out;
}
