/**
 * OpenSSH `known_hosts` files: parsing, host matching (plain, wildcard, negated, `[host]:port`
 * and hashed names), key comparison and fingerprints. Pure functions, no I/O; the file itself is
 * read and appended by `KnownHostsStore` (known-hosts-store.ts).
 *
 * Format reference: man sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"; key blobs: RFC 4253 §6.6
 * (ssh-rsa, ssh-dss), RFC 5656 §3.1 (ecdsa-sha2-*), RFC 8709 §4 (ssh-ed25519);
 * fingerprints as printed by `ssh-keygen -lf` (OpenSSH ≥ 6.8: `SHA256:` + unpadded base64).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A line marker (sshd(8)): `@cert-authority` lines hold a CA key, `@revoked` lines a key never to accept. */
export type KnownHostMarker = 'cert-authority' | 'revoked';

/** The host-name field of a `|1|salt|hash` line (`ssh-keygen -H`): HMAC-SHA1(key = salt, data = host name). */
export interface HashedHostName {
  salt: Buffer;
  hash: Buffer;
}

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker: KnownHostMarker | null;
  /** Comma-separated patterns of the host-name field (may start with `!`, may contain `*` `?`); empty when hashed. */
  patterns: string[];
  /** Set instead of `patterns` for a hashed line. */
  hashed: HashedHostName | null;
  /** Key type as written, e.g. `ssh-ed25519` (always equal to the type inside the blob). */
  keyType: string;
  /** The public key blob (SSH wire format, the base64 field decoded). */
  key: Buffer;
  /** Anything after the key, or ''. */
  comment: string;
}

/** A line that could not be used, with why. OpenSSH skips such lines too. */
export interface KnownHostsLineError {
  line: number;
  message: string;
}

/** What {@link parseKnownHosts} returns: usable entries and skipped lines. */
export interface KnownHostsParseResult {
  entries: KnownHostEntry[];
  errors: KnownHostsLineError[];
}

const KEY_TYPE = /^[A-Za-z0-9@._+-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Parses the text of a known_hosts file. Blank lines and `#` comments are ignored; each other line
 * is `[@marker] hostnames keytype base64-key [comment]` (fields separated by spaces or tabs).
 * Lines that do not parse (unknown marker, missing field, bad base64, key type not matching the
 * blob, the old RSA1 `bits e n` form) are reported in `errors` and otherwise skipped.
 */
export function parseKnownHosts(text: string): KnownHostsParseResult {
  const entries: KnownHostEntry[] = [];
  const errors: KnownHostsLineError[] = [];
  const lines = text.split('\n');
  lines.forEach((rawLine, i) => {
    const line = i + 1;
    const body = rawLine.replace(/\r$/, '').trim();
    if (body === '' || body.startsWith('#')) return;
    const fields = body.split(/[ \t]+/);
    let marker: KnownHostMarker | null = null;
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@cert-authority') marker = 'cert-authority';
      else if (m === '@revoked') marker = 'revoked';
      else {
        errors.push({ line, message: `unknown marker ${m}` });
        return;
      }
    }
    const [hostField, keyType, keyB64, ...rest] = fields;
    if (hostField === undefined || keyType === undefined || keyB64 === undefined) {
      errors.push({ line, message: 'expected "hostnames keytype base64-key"' });
      return;
    }
    if (!KEY_TYPE.test(keyType) || /^\d+$/.test(keyType)) {
      errors.push({ line, message: `not a key type: ${keyType}` });
      return;
    }
    if (!BASE64.test(keyB64)) {
      errors.push({ line, message: 'the key is not base64' });
      return;
    }
    const key = Buffer.from(keyB64, 'base64');
    const inner = keyTypeOf(key);
    if (inner !== keyType) {
      errors.push({ line, message: `key type ${keyType} does not match the key blob (${inner ?? 'unreadable'})` });
      return;
    }
    let hashed: HashedHostName | null = null;
    let patterns: string[] = [];
    if (hostField.startsWith('|')) {
      hashed = parseHashedHostName(hostField);
      if (hashed === null) {
        errors.push({ line, message: 'malformed hashed host name (expected |1|base64-salt|base64-hash)' });
        return;
      }
    } else {
      patterns = hostField.split(',').filter((p) => p !== '');
      if (patterns.length === 0) {
        errors.push({ line, message: 'empty host-name field' });
        return;
      }
    }
    entries.push({ line, marker, patterns, hashed, keyType, key, comment: rest.join(' ') });
  });
  return { entries, errors };
}

/** Parses `|1|base64salt|base64hash`; null when malformed. Salt and hash are 20 bytes (SHA-1). */
export function parseHashedHostName(field: string): HashedHostName | null {
  const m = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(field);
  if (!m) return null;
  const salt = Buffer.from(m[1] as string, 'base64');
  const hash = Buffer.from(m[2] as string, 'base64');
  if (salt.length !== 20 || hash.length !== 20) return null;
  return { salt, hash };
}

/**
 * The name OpenSSH looks up for a host: the address itself on port 22, `[address]:port` otherwise
 * (sshd(8): "hostnames … [hostname]:port"). Lower-cased, as OpenSSH does before matching.
 */
export function knownHostsName(address: string, port: number): string {
  const a = address.toLowerCase();
  return port === 22 ? a : `[${a}]:${port}`;
}

/**
 * Hashes a host name the way `ssh-keygen -H` does: `|1|` base64(salt) `|` base64(HMAC-SHA1(salt, name)).
 * @param salt 20 random bytes; a new random salt when omitted.
 */
export function hashHostName(name: string, salt: Buffer = randomBytes(20)): string {
  const hash = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
}

/**
 * OpenSSH wildcard match (match.c `match_pattern`): `*` is any run of characters (also none),
 * `?` exactly one character; everything else, `[` and `]` included, is literal. Case-insensitive.
 */
export function matchWildcard(name: string, pattern: string): boolean {
  const s = name.toLowerCase();
  const p = pattern.toLowerCase();
  // Iterative glob match with backtracking on the last `*`.
  let si = 0;
  let pi = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const pc = p[pi];
    if (pc === '*') {
      starP = pi++;
      starS = si;
    } else if (pc !== undefined && (pc === '?' || pc === s[si])) {
      si++;
      pi++;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (p[pi] === '*') pi++;
  return pi === p.length;
}

/**
 * OpenSSH pattern-list match (match.c `match_hostname`): true when some pattern matches `name` and no
 * negated pattern (`!pattern`) does — a matching negation rejects the whole line.
 */
export function matchPatternList(name: string, patterns: readonly string[]): boolean {
  let positive = false;
  for (const pat of patterns) {
    if (pat.startsWith('!')) {
      if (matchWildcard(name, pat.slice(1))) return false;
    } else if (matchWildcard(name, pat)) {
      positive = true;
    }
  }
  return positive;
}

/** Whether a hashed host-name field is the hash of `name`. */
export function matchHashed(name: string, hashed: HashedHostName): boolean {
  const h = createHmac('sha1', hashed.salt).update(name).digest();
  return h.length === hashed.hash.length && timingSafeEqual(h, hashed.hash);
}

/** Whether `entry`'s host-name field covers `name` (as given by {@link knownHostsName}). */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  return entry.hashed ? matchHashed(name, entry.hashed) : matchPatternList(name, entry.patterns);
}

/**
 * The verdict on a key offered by a host:
 * - `known`: a plain entry for this host has exactly this key;
 * - `unknown`: no entry for this host at all (trust on first use may record it);
 * - `changed`: entries exist for this host, none with this key (`known` lists them, any key type);
 * - `revoked`: an `@revoked` entry covering this host has this key.
 */
export type HostKeyCheck =
  | { status: 'known'; entry: KnownHostEntry }
  | { status: 'unknown' }
  | { status: 'changed'; known: KnownHostEntry[] }
  | { status: 'revoked'; entry: KnownHostEntry };

/**
 * Checks the key a host offered against parsed entries. `@cert-authority` lines are ignored (host
 * certificates are not supported, so they can neither vouch for nor conflict with a plain key).
 *
 * Stricter than OpenSSH on one point: a host with known keys that offers a key of ANOTHER type is
 * `changed`, not "new" — callers prefer the known key types during key exchange
 * ({@link hostKeyAlgorithmsFor}), so a mismatch means the host really lost its known key.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyCheck {
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && entryMatchesHost(e, name));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = forHost.filter((e) => e.marker === null);
  const same = plain.find((e) => e.key.equals(key));
  if (same) return { status: 'known', entry: same };
  if (plain.length === 0) return { status: 'unknown' };
  return { status: 'changed', known: plain };
}

/** The key types (e.g. `ssh-ed25519`) of the plain entries that cover `name`, in file order, without repeats. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.marker === null && entryMatchesHost(e, name) && !out.includes(e.keyType)) out.push(e.keyType);
  }
  return out;
}

/**
 * The ssh2 host-key algorithm names that produce keys of the given types, to offer first during
 * key exchange (RFC 8332: an `ssh-rsa` key is used by `rsa-sha2-512`/`rsa-sha2-256`/`ssh-rsa`).
 * Types ssh2 does not offer by default (ssh-dss, certificates, sk-*) are left out.
 */
export function hostKeyAlgorithmsFor(keyTypes: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of keyTypes) {
    const algs =
      t === 'ssh-rsa'
        ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
        : ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'].includes(t)
          ? [t]
          : [];
    for (const a of algs) if (!out.includes(a)) out.push(a);
  }
  return out;
}

/** Reads the uint32-length-prefixed strings of an SSH wire blob (RFC 4251 §5); stops at the first malformed one. */
function sshStrings(blob: Buffer, max: number): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (out.length < max && off + 4 <= blob.length) {
    const len = blob.readUInt32BE(off);
    if (off + 4 + len > blob.length) break;
    out.push(blob.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

/** The key type named at the start of a public key blob (`ssh-ed25519`, …), or undefined if unreadable. */
export function keyTypeOf(blob: Buffer): string | undefined {
  const [t] = sshStrings(blob, 1);
  if (t === undefined || t.length === 0 || t.length > 64) return undefined;
  const s = t.toString('latin1');
  return KEY_TYPE.test(s) ? s : undefined;
}

/** `SHA256:` + unpadded base64 of SHA-256(blob) — what `ssh-keygen -lf` prints (OpenSSH ≥ 6.8). */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

function mpintBits(m: Buffer | undefined): number {
  if (!m) return 0;
  let i = 0;
  while (i < m.length && m[i] === 0) i++;
  if (i === m.length) return 0;
  return (m.length - i - 1) * 8 + (32 - Math.clz32(m[i] as number));
}

/** What `ssh-keygen -l` shows about a key: size in bits, fingerprint and a label such as `ED25519`. */
export interface KeyDescription {
  type: string;
  bits: number;
  fingerprint: string;
  label: string;
}

/** Describes a public key blob (bits from the RSA/DSA modulus or the ECDSA curve; 256 for Ed25519). */
export function describeKey(blob: Buffer): KeyDescription {
  const type = keyTypeOf(blob) ?? 'unknown';
  let bits = 0;
  let label = type.toUpperCase();
  if (type === 'ssh-ed25519') {
    bits = 256;
    label = 'ED25519';
  } else if (type.startsWith('ecdsa-sha2-nistp')) {
    bits = Number(type.slice('ecdsa-sha2-nistp'.length)) || 0;
    label = 'ECDSA';
  } else if (type === 'ssh-rsa') {
    bits = mpintBits(sshStrings(blob, 3)[2]);
    label = 'RSA';
  } else if (type === 'ssh-dss') {
    bits = mpintBits(sshStrings(blob, 2)[1]);
    label = 'DSA';
  }
  return { type, bits, fingerprint: fingerprintSha256(blob), label };
}

/** `256 SHA256:… (ED25519)`, the shape of an `ssh-keygen -lf` line without the comment. */
export function formatKey(blob: Buffer): string {
  const d = describeKey(blob);
  return `${d.bits} ${d.fingerprint} (${d.label})`;
}

/**
 * One known_hosts line for `name` (from {@link knownHostsName}) and a key blob, newline not included.
 * The comment, if any, must not contain a newline.
 */
export function formatKnownHostsLine(name: string, blob: Buffer, comment?: string): string {
  const type = keyTypeOf(blob);
  if (type === undefined) throw new Error('not an SSH public key blob');
  if (comment !== undefined && /[\r\n]/.test(comment)) throw new Error('a known_hosts comment cannot contain a newline');
  return `${name} ${type} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/** The usual path of a host key of this type on the server, to compare fingerprints at the console. */
export function serverHostKeyPath(type: string): string {
  const short =
    type === 'ssh-ed25519' ? 'ed25519' : type.startsWith('ecdsa-') ? 'ecdsa' : type === 'ssh-rsa' ? 'rsa' : type === 'ssh-dss' ? 'dsa' : 'ed25519';
  return `/etc/ssh/ssh_host_${short}_key.pub`;
}
