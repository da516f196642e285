/**
 * The cluster's secrets: generated once per cluster with the OS CSPRNG, kept in
 * `<stateDir>/secrets.yaml` (mode 0600, folder 0700; or `secrets.yaml.age`, age-encrypted), reused
 * on every later run, never printed. A secret may instead come from the site's own store, an
 * environment variable or a command (the inventory's `secrets:`, src/inventory/secret-sources.ts):
 * such a secret is never generated and never written to the file.
 *
 * Existing values are never changed: a key missing from an existing file is generated and added,
 * and a file that others can read is refused rather than fixed behind the user's back. Only the
 * commands that change hosts create the file ({@link loadOrCreateSecrets}); `plan` needs it
 * ({@link requireSecrets}) and `render` falls back to {@link placeholderSecrets}. What the hosts were
 * set up with is recorded on them as a keyed fingerprint ({@link secretsFingerprint}), so a lost or
 * swapped file, or a source that now gives another value, is refused instead of pushing new values
 * into a live cluster.
 */
import { createHmac, randomBytes, scryptSync } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, stringify } from 'yaml';
import { InputError, type Diagnostic } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import { SECRET_KINDS, SECRET_NAMES, type SecretKind, type SecretName } from './secret-names.js';
import { ageDecrypt, ageEncrypt, readSources, type SecretsSettings } from './secret-sources.js';

/** One secret per purpose, identical on every host that needs it. */
export interface ClusterSecrets {
  /** PostgreSQL superuser (`postgres`), used by Patroni. */
  postgresSuperuser: Secret;
  /** PostgreSQL streaming replication user (`replicator`). */
  postgresReplication: Secret;
  /** PostgreSQL user Patroni uses for pg_rewind (`rewind_user`). */
  postgresRewind: Secret;
  /** Basic auth of Patroni's REST API write endpoints (`restapi.authentication`). */
  patroniRestApi: Secret;
  /** Password of Airflow's database role. */
  airflowDb: Secret;
  /** RabbitMQ user Airflow's Celery connects as. */
  rabbitmqAirflow: Secret;
  /** RabbitMQ administrator (management UI). */
  rabbitmqAdmin: Secret;
  /** Erlang distribution cookie, identical on every RabbitMQ node. */
  erlangCookie: Secret;
  /** Airflow `[core] fernet_key` (encrypts connections and variables in the database). */
  airflowFernetKey: Secret;
  /** Airflow `[webserver] secret_key` (Airflow 3: `[api] secret_key`); signs sessions and log requests. */
  airflowSecretKey: Secret;
  /** Airflow 3 `[api_auth] jwt_secret`, identical on every API server. */
  airflowJwtSecret: Secret;
  /** Password of the Airflow UI `admin` user. */
  airflowAdmin: Secret;
  /** Basic auth of the HAProxy stats page. */
  haproxyStats: Secret;
  /** Password of Flower's `--basic-auth`. */
  flowerBasicAuth: Secret;
  /** Password of the FTP account that drops DAG files. */
  ftpUser: Secret;
  /** Password of postgres_exporter's PostgreSQL role (`airflow_ha_monitor`, member of pg_monitor). */
  postgresMonitor: Secret;
  /** Alertmanager's SMTP AUTH password (`cluster.monitoring.receivers.email.user`); give it a source in `secrets:`. */
  alertmanagerSmtp: Secret;
  /** Alertmanager's webhook basic-auth password (`cluster.monitoring.receivers.webhook.user`); give it a source in `secrets:`. */
  alertmanagerWebhook: Secret;
}

export { SECRET_KINDS, SECRET_NAMES, type SecretKind, type SecretName } from './secret-names.js';

// ClusterSecrets and SECRET_KINDS name the same secrets (a compile-time check both ways).
const sameNames: [keyof ClusterSecrets, SecretName] extends [SecretName, keyof ClusterSecrets] ? true : never = true;
void sameNames;

/** Name of the secrets file inside the state folder. */
export const SECRETS_FILE = 'secrets.yaml';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * `length` characters drawn uniformly from `alphabet` (rejection sampling: bytes at or above the
 * largest multiple of the alphabet size are discarded, so no character is more likely than another).
 */
export function randomString(length: number, alphabet: string): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit) out += alphabet[b % alphabet.length];
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * A new value of a kind.
 * - password: 32 characters of [A-Za-z0-9] (~190 bits). URL-safe without escaping (they go into
 *   `sql_alchemy_conn` and `broker_url`) and free of characters that configs or CLIs treat specially
 *   (`:` in `user:password`, a leading `-` read as an option, `%` in configparser).
 * - erlangCookie: 32 characters of [A-Z0-9].
 * - fernetKey: 32 random bytes in URL-safe base64 with padding (44 characters), exactly what
 *   `cryptography.fernet.Fernet.generate_key()` returns.
 * - hex32: 32 random bytes as 64 hex digits.
 */
export function generateSecretValue(kind: SecretKind): string {
  switch (kind) {
    case 'password':
      return randomString(32, ALNUM);
    case 'erlangCookie':
      return randomString(32, UPPER_DIGITS);
    case 'fernetKey':
      return randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    case 'hex32':
      return randomBytes(32).toString('hex');
  }
}

/** True for a valid Fernet key: URL-safe base64 of exactly 32 bytes. */
export function isFernetKey(value: string): boolean {
  if (!/^[A-Za-z0-9_-]{43}=$/.test(value)) return false;
  return Buffer.from(value, 'base64url').length === 32;
}

/** Every secret's value, for {@link maskSecrets}. */
export function allSecrets(secrets: ClusterSecrets): Secret[] {
  return SECRET_NAMES.map((n) => secrets[n]);
}

/** Name of the secrets file inside the state folder when it is age-encrypted (`secretsFile.encryption: age`). */
export const SECRETS_FILE_AGE = 'secrets.yaml.age';

/** The secrets file of `stateDir` under `settings`: `secrets.yaml`, or `secrets.yaml.age` when encrypted. */
export function secretsFilePath(stateDir: string, settings?: SecretsSettings): string {
  return path.join(stateDir, settings?.age ? SECRETS_FILE_AGE : SECRETS_FILE);
}

/** What the store holds: the file's values (undefined: no file) and the sourced secrets. */
interface Store {
  file: string;
  values: Record<string, string> | undefined;
  sourced: Partial<Record<SecretName, Secret>>;
}

/** Reads the secrets file (decrypting it when encrypted), then every source; changes nothing. */
async function readStore(stateDir: string, settings: SecretsSettings | undefined): Promise<Store> {
  const file = secretsFilePath(stateDir, settings);
  const values = await readSecretsFile(file, settings);
  if (values === undefined) {
    // A file of the other kind is this cluster's secrets kept the other way: never generate anew beside it.
    const other = path.join(stateDir, settings?.age ? SECRETS_FILE : SECRETS_FILE_AGE);
    if (await exists(other)) {
      throw new InputError(
        settings?.age
          ? `secretsFile.encryption is age but the secrets are in ${other}, in clear, and ${file} does not exist; encrypt them to the recipients (\`age --encrypt --armor -r RECIPIENT -o ${file} ${other} && chmod 600 ${file}\`), check that the identity decrypts them, then remove ${other}; nothing was changed`
          : `the secrets are in ${other}, age-encrypted, but the inventory does not set secretsFile.encryption: age; set it (with recipients and identityFile) or decrypt the file to ${file}; nothing was changed`,
      );
    }
  }
  const sourced = await readSources(settings, validateSecretValue);
  return { file, values, sourced };
}

/** The secrets neither sourced nor in the file's `values`. */
function missingFrom(store: Pick<Store, 'values' | 'sourced'>): SecretName[] {
  return SECRET_NAMES.filter((n) => store.sourced[n] === undefined && store.values?.[n] === undefined);
}

/** Every secret: a sourced value wins over the file's (a file entry of a sourced secret is not read). */
function assemble(store: Pick<Store, 'values' | 'sourced'>): ClusterSecrets {
  return Object.fromEntries(SECRET_NAMES.map((n) => [n, store.sourced[n] ?? new Secret(store.values![n]!)])) as unknown as ClusterSecrets;
}

/**
 * The cluster's secrets: each sourced one from its source (`settings.sources`, see
 * src/inventory/secret-sources.ts), the others from the secrets file (`<stateDir>/secrets.yaml`, or
 * `secrets.yaml.age` when `settings.age`), which is created (and `stateDir`, mode 0700) on first use
 * with every secret that has neither a source nor an entry, and completed the same way later. A
 * secret that has a source is never generated, whatever its source does. `created` lists the keys
 * generated by this call.
 * @throws InputError (exit 2), before anything is written, when a source fails or gives a refused
 *   value, when the file is readable by group or others, cannot be decrypted, is not a mapping of
 *   strings or holds a refused value, or when the file is kept the other way (clear or encrypted)
 *   than `settings` says. No value ever appears in a message.
 */
export async function loadOrCreateSecrets(stateDir: string, settings?: SecretsSettings): Promise<{ secrets: ClusterSecrets; created: string[]; file: string }> {
  const first = await readStore(stateDir, settings);
  const { file, sourced } = first;
  let created: string[] = [];
  let existing = first.values;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) existing = await readSecretsFile(file, settings);
    const values: Record<string, string> = { ...(existing ?? {}) };
    const missing = missingFrom({ values, sourced });
    if (missing.length === 0) return { secrets: assemble({ values, sourced }), created, file };
    for (const name of missing) values[name] = generateSecretValue(SECRET_KINDS[name]);
    const content = await encodeFor(file, render(values), settings);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    // A new file is linked into place only if none appeared meanwhile (another run creating the
    // same cluster's secrets at the same moment): then we start over and use its values. Either
    // way the file is read back, so what is returned is what is on disk.
    if (await writeAtomically(file, content, existing === undefined ? 'create' : 'replace')) created = missing;
  }
  throw new InputError(`secrets file ${file} keeps changing while it is being written; is another airflow-ha run using ${stateDir}?`);
}

/**
 * The cluster's secrets without creating or changing anything (for read-only commands such as
 * `status` and `render`), from the file and the sources as {@link loadOrCreateSecrets} reads them;
 * undefined when a secret without a source is not in the file (or there is no file).
 * @throws InputError like {@link loadOrCreateSecrets} for a source that fails, or a file that is
 *   unsafe, cannot be decrypted or is malformed.
 */
export async function readSecrets(stateDir: string, settings?: SecretsSettings): Promise<ClusterSecrets | undefined> {
  const store = await readStore(stateDir, settings);
  return missingFrom(store).length > 0 ? undefined : assemble(store);
}

/**
 * The cluster's secrets without creating or changing anything, for `plan`: every secret, from the
 * file and the sources as {@link loadOrCreateSecrets} reads them.
 * @throws InputError (exit 2) when a secret without a source is not in the file, or there is no file
 *   and one is needed, saying which command creates it (`create`, e.g. `airflow-ha bootstrap -i
 *   site.yaml`); like {@link loadOrCreateSecrets} for a failing source or an unsafe or malformed file.
 */
export async function requireSecrets(stateDir: string, create: string, settings?: SecretsSettings): Promise<ClusterSecrets> {
  const store = await readStore(stateDir, settings);
  const missing = missingFrom(store);
  if (missing.length > 0 && !store.values) {
    throw new InputError(`secrets file ${store.file} does not exist; \`${create}\` creates it on its first run (if this cluster was set up before, restore the file from your backup instead)`);
  }
  if (missing.length > 0) throw new InputError(`secrets file ${store.file} lacks ${missing.join(', ')}; \`${create}\` adds the missing keys`);
  return assemble(store);
}

/** The text every placeholder secret starts with (see {@link placeholderSecrets}). */
export const PLACEHOLDER_PREFIX = 'PLACEHOLDER-';

/**
 * Stand-ins for `render` when there is no secrets file: `PLACEHOLDER-<name>` (the name of the
 * secret, e.g. `PLACEHOLDER-airflowDb`), except the Fernet key, which must have a Fernet key's
 * shape: `PLACEHOLDER-airflowFernetKey` padded with `x` to 43 characters and `=`. Each is valid for
 * the rules of {@link validateSecretValue}, so every template renders; none is a secret.
 */
export function placeholderSecrets(): ClusterSecrets {
  return Object.fromEntries(
    SECRET_NAMES.map((n) => {
      const base = `${PLACEHOLDER_PREFIX}${n}`;
      const value = SECRET_KINDS[n] === 'fernetKey' ? `${base.padEnd(43, 'x')}=` : SECRET_KINDS[n] === 'erlangCookie' ? `PLACEHOLDER${n}`.toUpperCase() : base;
      return [n, new Secret(value)];
    }),
  ) as unknown as ClusterSecrets;
}

/** Shortest hand-written value of a password or key accepted (generated ones have 32 characters or more). */
export const MIN_SECRET_LENGTH = 16;

/**
 * Characters a password or key may hold: RFC 3986's unreserved set. Such a value needs no escaping
 * in any place airflow-ha writes it: the `user:password@host` of `sql_alchemy_conn`, `broker_url`
 * and `result_backend` (RFC 3986 3.2.1: `:`, `@`, `/`, `%` would need percent-encoding), airflow.cfg
 * (Python's ConfigParser interpolates `%`), patroni.yml's single-quoted YAML strings (a `'` would end
 * them), HAProxy's `stats auth user:password` and Flower's `user:password` (split at `:`; whitespace
 * and `#` end a word in haproxy.cfg), and shell words (quoted anyway by src/core/cmd.ts).
 */
const SAFE_CHARS = /^[A-Za-z0-9._~-]+$/;

/**
 * Why `value` cannot be the secret `name` (its rule id and the reason), or undefined when it can.
 * Rules: `secrets:fernet-key` (URL-safe base64 of 32 bytes, 44 characters ending in `=`);
 * `secrets:erlang-cookie` (1 to 255 characters of [A-Za-z0-9]: "a string of alphanumeric characters
 * up to 255 characters in size", https://www.rabbitmq.com/docs/clustering#erlang-cookie);
 * `secrets:charset` and `secrets:length` for every other secret (see SAFE_CHARS, at least
 * {@link MIN_SECRET_LENGTH} characters, no leading `-`). Never quotes the value.
 */
export function validateSecretValue(name: SecretName, value: string): { rule: string; message: string } | undefined {
  switch (SECRET_KINDS[name]) {
    case 'fernetKey':
      return isFernetKey(value) ? undefined : { rule: 'secrets:fernet-key', message: 'is not a Fernet key (32 bytes in URL-safe base64, 44 characters ending in "=")' };
    case 'erlangCookie':
      return /^[A-Za-z0-9]{1,255}$/.test(value) ? undefined : { rule: 'secrets:erlang-cookie', message: 'an Erlang cookie must be 1 to 255 characters of A-Z, a-z, 0-9' };
    default:
      if (!SAFE_CHARS.test(value)) {
        return {
          rule: 'secrets:charset',
          message: 'may hold only A-Z, a-z, 0-9 and . _ ~ - (no quotes, @, %, :, /, #, spaces or newlines: they would need escaping in a database URL, airflow.cfg or YAML)',
        };
      }
      if (value.startsWith('-')) return { rule: 'secrets:charset', message: 'must not start with "-" (a command would read it as an option)' };
      if (value.length < MIN_SECRET_LENGTH) return { rule: 'secrets:length', message: `must have at least ${MIN_SECRET_LENGTH} characters (generated values have 32)` };
      return undefined;
  }
}

/**
 * The fingerprint of `secrets` recorded on every host (see src/run/fingerprint.ts): one line,
 * `airflow-ha-secrets-fingerprint v1 names=<names> hmac-sha256=<64 hex digits>`.
 *
 * The MAC is HMAC-SHA256 (RFC 2104) over the secrets' names and values (sorted by name, each
 * length-prefixed so no two sets give the same message), keyed by scrypt (RFC 7914; N=2^14, r=8,
 * p=1, 32 bytes, salted with the cluster's name) of that same message. It tells whether two secret
 * sets are equal and nothing else: without every value the key cannot be computed, and a guess at
 * the values costs one scrypt (about 16 MiB and tens of milliseconds) each. Generated values have
 * ~190 bits; a weak hand-written one is as guessable as it would be anywhere.
 *
 * @param names the secrets covered (default: all); a host's file names the set it was made with, so
 *   a key added by a newer airflow-ha does not make an old fingerprint differ.
 * @throws Error when a name is not a secret of `secrets`.
 */
export function secretsFingerprint(secrets: ClusterSecrets, cluster: string, names: readonly string[] = SECRET_NAMES): string {
  const sorted = [...new Set(names)].sort();
  const message = sorted
    .map((n) => {
      const s = (secrets as unknown as Record<string, Secret | undefined>)[n];
      if (!(s instanceof Secret)) throw new Error(`secretsFingerprint: ${n} is not a secret`);
      const v = s.reveal();
      return `${Buffer.byteLength(n)}:${n}${Buffer.byteLength(v)}:${v}`;
    })
    .join('');
  const key = scryptSync(message, `airflow-ha secrets fingerprint v1 ${cluster}`, 32, { N: 2 ** 14, r: 8, p: 1 });
  const mac = createHmac('sha256', key).update(message).digest('hex');
  return `${FINGERPRINT_TAG} names=${sorted.join(',')} hmac-sha256=${mac}`;
}

/** The first word and version of a fingerprint line. */
export const FINGERPRINT_TAG = 'airflow-ha-secrets-fingerprint v1';

/** The names a fingerprint line covers, or undefined when `line` is not a v1 fingerprint. */
export function fingerprintNames(line: string): string[] | undefined {
  const m = /^airflow-ha-secrets-fingerprint v1 names=([A-Za-z0-9,]+) hmac-sha256=[0-9a-f]{64}$/.exec(line.trim());
  return m ? (m[1] as string).split(',') : undefined;
}

/**
 * Sets the secret `name` to `value` in the secrets file (decrypted and re-encrypted to the same
 * recipients when `settings.age`), every other entry kept; written to a 0600 temp file in the same
 * folder, fsynced, renamed over the file. Returns the file.
 * @throws InputError when the file does not exist or cannot be read (as {@link loadOrCreateSecrets}),
 *   or `value` is refused by {@link validateSecretValue}.
 */
export async function writeSecretValue(stateDir: string, settings: SecretsSettings | undefined, name: SecretName, value: string): Promise<string> {
  const bad = validateSecretValue(name, value);
  if (bad) throw new InputError(`${name}: the new value is refused [${bad.rule}]: ${bad.message}`);
  const file = secretsFilePath(stateDir, settings);
  const values = await readSecretsFile(file, settings);
  if (!values) throw new InputError(`secrets file ${file} does not exist`);
  await writeAtomically(file, await encodeFor(file, render({ ...values, [name]: value }), settings), 'replace');
  return file;
}

/** `text` as the bytes of `file`: age-encrypted to `settings.age`'s recipients, or as it is. */
async function encodeFor(file: string, text: string, settings: SecretsSettings | undefined): Promise<Buffer> {
  return settings?.age ? ageEncrypt(text, settings.age, settings.env ?? {}, file) : Buffer.from(text, 'utf8');
}

/**
 * A rotation under way (rotate-secret): which secret, its value before and its value after. Kept
 * beside the secrets file until the rotation ends, so a rotation that stops midway resumes with the
 * same new value (and still knows the old one, which the fernet key's first phase needs).
 */
export interface PendingRotation {
  secret: SecretName;
  old: Secret;
  new: Secret;
}

/** The pending rotation's file in `stateDir`: `rotation.yaml`, or `rotation.yaml.age` when the secrets file is age-encrypted. */
export function rotationFilePath(stateDir: string, settings?: SecretsSettings): string {
  return path.join(stateDir, settings?.age ? 'rotation.yaml.age' : 'rotation.yaml');
}

/**
 * The pending rotation of `stateDir`, or undefined when there is none.
 * @throws InputError when the file is readable by others, cannot be decrypted, or does not hold a
 *   known secret's name and two acceptable values (never quoting one).
 */
export async function readPendingRotation(stateDir: string, settings?: SecretsSettings): Promise<PendingRotation | undefined> {
  const file = rotationFilePath(stateDir, settings);
  const doc = await readSecretsFile(file, settings);
  if (!doc) return undefined;
  const name = doc['secret'];
  if (!name || !(SECRET_NAMES as string[]).includes(name)) throw new InputError(`${file}: not a pending rotation (no known secret named in "secret")`);
  const secret = name as SecretName;
  for (const k of ['old', 'new'] as const) {
    const v = doc[k];
    const bad = v === undefined ? { rule: 'secrets:string', message: 'missing' } : validateSecretValue(secret, v);
    if (bad) throw new InputError(`${file}: ${k} [${bad.rule}]: ${bad.message}`);
  }
  return { secret, old: new Secret(doc['old'] as string), new: new Secret(doc['new'] as string) };
}

/** Records `rotation` (0600 temp file + rename; age-encrypted like the secrets file). Returns the file. */
export async function writePendingRotation(stateDir: string, settings: SecretsSettings | undefined, rotation: PendingRotation): Promise<string> {
  const file = rotationFilePath(stateDir, settings);
  const text =
    `# airflow-ha: the rotation of ${rotation.secret} under way (rotate-secret). Removed when it ends; keep it until then.\n` +
    stringify({ secret: rotation.secret, old: rotation.old.reveal(), new: rotation.new.reveal() }, { defaultKeyType: 'PLAIN', defaultStringType: 'QUOTE_DOUBLE', lineWidth: 0 });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeAtomically(file, await encodeFor(file, text, settings), 'replace');
  return file;
}

/** Removes the pending rotation's file (none: nothing to do). */
export async function removePendingRotation(stateDir: string, settings?: SecretsSettings): Promise<void> {
  await unlink(rotationFilePath(stateDir, settings)).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await syncDir(stateDir);
}

/**
 * The file's key -> value map, or undefined when it does not exist; decrypted with age first when
 * `settings.age` (then the positions of findings are lines of the decrypted text).
 */
async function readSecretsFile(file: string, settings?: SecretsSettings): Promise<Record<string, string> | undefined> {
  let mode: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new InputError(`secrets file ${file} is not a regular file`);
    mode = st.mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if ((mode & 0o077) !== 0) {
    throw new InputError(
      `secrets file ${file} has mode ${mode.toString(8).padStart(4, '0')}: it must not be readable by group or others; fix it with \`chmod 600 ${file}\` (and check who has read it)`,
    );
  }
  const lines = new LineCounter();
  const text = settings?.age ? await ageDecrypt(file, settings.age, settings.env ?? {}) : await readFile(file, 'utf8');
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    // The parser's message quotes the offending line, which may hold a value: pass on only its position.
    const at = doc.errors[0]?.pos?.[0];
    const pos = at === undefined ? '' : (({ line, col }) => `:${line}:${col}`)(lines.linePos(at));
    throw new InputError(`${file}${pos}: secrets file is not valid YAML`);
  }
  const root = doc.contents;
  if (root === null || root === undefined) return {};
  if (!isMap(root)) throw new InputError(`secrets file ${file} must be a mapping of name: value`);
  const out: Record<string, string> = {};
  const findings: Diagnostic[] = [];
  for (const pair of root.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const node = pair.value;
    const rangeOf = (n: unknown) => (n as { range?: readonly number[] } | null)?.range?.[0];
    const offset = rangeOf(node) ?? rangeOf(pair.key) ?? 0;
    const { line, col } = lines.linePos(offset);
    const pos = { file, line, col };
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'string' || v.length === 0) {
      const quote = typeof v === 'number' || typeof v === 'boolean' ? ' (quote the value)' : '';
      findings.push({ severity: 'error', pos, path: k, rule: 'secrets:string', message: `must be a non-empty string${quote}` });
      continue;
    }
    out[k] = v;
    // Keys unknown to this version are kept as they are (a newer version may have written them).
    const bad = (SECRET_NAMES as string[]).includes(k) ? validateSecretValue(k as SecretName, v) : undefined;
    if (bad) findings.push({ severity: 'error', pos, path: k, rule: bad.rule, message: bad.message });
  }
  if (findings.length > 0) {
    // The CLI prints each finding as file:line:col: error [rule] key: message (formatDiagnostic).
    throw new InputError(`secrets file ${file}: ${findings.length} value(s) refused (values are never shown)`, findings);
  }
  return out;
}

function render(values: Record<string, string>): string {
  // Known keys in their fixed order, then any unknown ones (kept: a newer version may have written them).
  const ordered: Record<string, string> = {};
  for (const n of SECRET_NAMES) if (values[n] !== undefined) ordered[n] = values[n];
  for (const [k, v] of Object.entries(values)) if (!(k in ordered)) ordered[k] = v;
  return (
    '# airflow-ha cluster secrets: generated once, reused on every run. Keep this file mode 0600.\n' +
    '# Values may be replaced by hand (e.g. to keep an existing fernet key); never commit this file.\n' +
    stringify(ordered, { defaultKeyType: 'PLAIN', defaultStringType: 'QUOTE_DOUBLE', lineWidth: 0 })
  );
}

/**
 * Writes `content` to `file` through a 0600 temp file in the same folder, fsynced, then renamed over
 * `file` ('replace') or hard-linked to it ('create', which fails if `file` exists: returns false).
 */
async function writeAtomically(file: string, content: Buffer, how: 'create' | 'replace'): Promise<boolean> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await chmod(tmp, 0o600); // in case the umask removed bits we need (it cannot add any)
    if (how === 'replace') {
      await rename(tmp, file);
    } else {
      try {
        await link(tmp, file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        // File systems without hard links: the exclusive create is then best effort.
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code ?? '')) throw e;
        if (await exists(file)) return false;
        await rename(tmp, file);
      } finally {
        await unlink(tmp).catch(() => undefined);
      }
    }
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  await syncDir(dir);
  return true;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, constants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // Not every file system lets a directory be fsynced; the rename is still atomic.
  }
}
