/**
 * Secrets from the site's own store instead of the generated secrets file: an environment variable
 * or a command's standard output (the inventory's `secrets:`), and the age encryption of the
 * secrets file (`secretsFile: { encryption: age }`). Commands run on the operator's machine without
 * a shell, through execa (https://github.com/sindresorhus/execa), so `pass show`, `op read`,
 * `vault kv get -field=...`, `sops -d --extract ...` or `age -d ...` serve without their SDKs.
 *
 * What a command was run with is never put into a message: a failure names the secret, the kind
 * of source and what went wrong (exit code, signal, timeout, the end of its stderr), never the argv
 * and never a value.
 */
import { InputError } from '../core/errors.js';
import { maskSecrets, Secret } from '../core/secret.js';
import { SECRET_COMMAND_TIMEOUT_SEC, type SecretSource, type SecretSources } from './schema.js';
import { SECRET_NAMES, type SecretName } from './secret-names.js';

/** How the secrets are had, beyond the state folder: built from the inventory by the CLI. */
export interface SecretsSettings {
  /** The inventory's `secrets:`: the secrets that come from a source, by name. */
  sources?: SecretSources;
  /**
   * The secrets file is age-encrypted (`secretsFile.encryption: age`): written to every recipient,
   * read with the identity file (an absolute path); `timeoutSec` (seconds) bounds each age run.
   */
  age?: { recipients: readonly string[]; identityFile: string; timeoutSec: number };
  /** The environment `env` sources are read from and commands (and age) run with. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The folder commands run in (the inventory's, so relative paths in an argv are relative to it); default: this process's. */
  cwd?: string;
}

/** The kind of a source, as messages name it. */
export type SourceKind = 'env' | 'command';

/** The secrets that come from a source, each with the kind of its source, in the order of SECRET_NAMES. */
export function sourcedNames(settings: SecretsSettings | undefined): Array<{ name: SecretName; kind: SourceKind }> {
  const sources = settings?.sources ?? {};
  return SECRET_NAMES.flatMap((name) => {
    const s = sources[name];
    return s ? [{ name, kind: s.env !== undefined ? ('env' as const) : ('command' as const) }] : [];
  });
}

/** What a local program did: exit code (undefined when killed), signal, timeout, output. */
export interface LocalRun {
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  /** The program could not be started (`ENOENT`: not found on PATH, `EACCES`: not executable). */
  startError: string | undefined;
  /** True when stdout passed {@link MAX_OUTPUT_BYTES} (the program was stopped). */
  tooLong: boolean;
  stdout: Buffer;
  stderr: string;
}

/** Most bytes read from a source command's or age's standard output (a secret or a secrets file). */
export const MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * Runs `argv` on this machine without a shell (execve(2) through execa) in `cwd` with exactly `env` (the
 * caller's environment is not added), `input` on stdin (else stdin is /dev/null), and kills it
 * (SIGTERM, then SIGKILL 2 s later) after `timeoutSec` seconds. Never rejects on a failure of the
 * program: the outcome is in the result (see {@link KILL_GRACE_MS} for a program whose children outlive it). Never builds a message from argv (execa's own messages
 * quote the command line, so none of them is used).
 */
export async function runLocal(argv: readonly string[], opts: { env: Readonly<Record<string, string | undefined>>; timeoutSec: number; input?: string; cwd?: string }): Promise<LocalRun> {
  const { execa } = await import('execa');
  const [file, ...args] = argv as [string, ...string[]];
  const sub = execa(file, args, {
    reject: false,
    env: { ...opts.env },
    extendEnv: false,
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    timeout: opts.timeoutSec * 1000,
    forceKillAfterDelay: KILL_GRACE_MS,
    encoding: 'buffer',
    stripFinalNewline: false,
    maxBuffer: MAX_OUTPUT_BYTES,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  // A program killed at the timeout may leave a child holding its stdout (`sh -c 'sleep 60'`, a
  // wrapper script): execa would wait for that pipe to close. Past the grace period the pipes are
  // closed on our side and the run counts as timed out.
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), opts.timeoutSec * 1000 + KILL_GRACE_MS);
  });
  const r = await Promise.race([sub, late]);
  clearTimeout(timer);
  if (r === 'late') {
    sub.kill('SIGKILL');
    sub.stdout?.destroy();
    sub.stderr?.destroy();
    sub.catch(() => undefined);
    return { exitCode: undefined, signal: 'SIGKILL', timedOut: true, startError: undefined, tooLong: false, stdout: Buffer.alloc(0), stderr: '' };
  }
  const cause = (r as { cause?: unknown }).cause as NodeJS.ErrnoException | undefined;
  const startError = r.failed && r.exitCode === undefined && !r.timedOut && !r.isMaxBuffer && typeof cause?.code === 'string' ? cause.code : undefined;
  return {
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    startError,
    tooLong: r.isMaxBuffer,
    stdout: Buffer.from(r.stdout ?? new Uint8Array()),
    stderr: Buffer.from(r.stderr ?? new Uint8Array()).toString('utf8'),
  };
}

/** Milliseconds between SIGTERM at a timeout and SIGKILL (and giving up on the program's pipes). */
const KILL_GRACE_MS = 2000;

/**
 * The last lines of a program's stderr for a message: at most 3 lines and 300 characters, control
 * characters shown as spaces, every word of `hide` (4 characters or more) replaced by `***`.
 */
export function stderrTail(stderr: string, hide: readonly string[] = []): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).slice(-3);
  let tail = lines.join(' | ').replace(/[\p{Cc}\u2028\u2029]/gu, ' ');
  tail = maskSecrets(tail, hide.filter((w) => w.length >= 4).map((w) => new Secret(w)));
  return tail.length > 300 ? `...${tail.slice(-297)}` : tail;
}

/** Why a local program failed, in words (undefined when it exited 0); names nothing it was run with. */
export function describeFailure(r: LocalRun, timeoutSec: number): string | undefined {
  if (r.startError === 'ENOENT') return 'its program was not found (not installed, or not on PATH)';
  if (r.startError) return `its program could not be started (${r.startError})`;
  if (r.timedOut) return `it did not finish within ${timeoutSec} s and was killed`;
  if (r.tooLong) return `it printed more than ${MAX_OUTPUT_BYTES} bytes and was stopped`;
  if (r.exitCode === undefined) return `it was killed by ${r.signal ?? 'a signal'}`;
  if (r.exitCode !== 0) return `it exited with code ${r.exitCode}`;
  return undefined;
}

/** A value as a source gave it: one trailing newline (`\n` or `\r\n`) removed, nothing else. */
export function stripTrailingNewline(text: string): string {
  return text.endsWith('\r\n') ? text.slice(0, -2) : text.endsWith('\n') ? text.slice(0, -1) : text;
}

/**
 * The value of secret `name` from `source` (a command runs in `cwd`), checked by `validate` (the
 * rules of hand-edited values, see validateSecretValue in src/inventory/secrets.ts).
 * @throws InputError (exit 2) naming the secret and the kind of source: an unset or empty variable,
 *   a command that cannot start, exits non-zero, is killed, times out (`timeoutSec`, seconds,
 *   default {@link SECRET_COMMAND_TIMEOUT_SEC}) or prints nothing, or a value the rules refuse (rule
 *   named). The argv and the value are never in the message.
 */
export async function readSource(
  name: SecretName,
  source: SecretSource,
  env: Readonly<Record<string, string | undefined>>,
  validate: (name: SecretName, value: string) => { rule: string; message: string } | undefined,
  cwd?: string,
): Promise<Secret> {
  let value: string;
  let kind: string;
  if (source.env !== undefined) {
    kind = `environment variable ${source.env}`;
    const v = env[source.env];
    if (v === undefined) throw new InputError(`secret ${name}: its source, the ${kind}, is not set`);
    value = stripTrailingNewline(v);
  } else {
    kind = 'command source';
    const argv = source.command ?? [];
    const timeoutSec = source.timeoutSec ?? SECRET_COMMAND_TIMEOUT_SEC;
    const r = await runLocal(argv, { env, timeoutSec, ...(cwd !== undefined ? { cwd } : {}) });
    const failure = describeFailure(r, timeoutSec);
    if (failure) {
      const tail = stderrTail(r.stderr, argv.slice(1));
      throw new InputError(`secret ${name}: its ${kind} failed: ${failure}${tail ? `; stderr: ${tail}` : ''}`);
    }
    value = stripTrailingNewline(r.stdout.toString('utf8'));
  }
  if (value === '') throw new InputError(`secret ${name}: its ${kind} gave an empty value`);
  const bad = validate(name, value);
  if (bad) throw new InputError(`secret ${name}: the value from its ${kind} is refused [${bad.rule}]: ${bad.message} (the value is not shown)`);
  return new Secret(value);
}

/**
 * Every sourced secret of `settings`, read one after the other (a command may ask on the terminal).
 * @throws InputError (exit 2) listing every failing secret (see {@link readSource}), one line each.
 */
export async function readSources(
  settings: SecretsSettings | undefined,
  validate: (name: SecretName, value: string) => { rule: string; message: string } | undefined,
): Promise<Partial<Record<SecretName, Secret>>> {
  const out: Partial<Record<SecretName, Secret>> = {};
  const failures: string[] = [];
  for (const { name } of sourcedNames(settings)) {
    try {
      out[name] = await readSource(name, settings!.sources![name]!, settings?.env ?? {}, validate, settings?.cwd);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      failures.push(e.message);
    }
  }
  if (failures.length === 1) throw new InputError(`${failures[0]}; nothing was changed`);
  if (failures.length > 1) throw new InputError(`${failures.length} secrets could not be read from their sources; nothing was changed:\n  ${failures.join('\n  ')}`);
  return out;
}

/** The message when `age` itself is missing. */
const AGE_MISSING = 'age is not installed on this machine (Debian 12: apt-get install age; https://age-encryption.org)';

/**
 * `text` encrypted with age (age(1): `age --encrypt --armor -r RECIPIENT...`, stdin to stdout) to
 * every recipient: the ASCII-armored file content.
 * @throws InputError (exit 2) when age is missing, fails (exit code and stderr tail) or times out.
 */
export async function ageEncrypt(text: string, age: NonNullable<SecretsSettings['age']>, env: Readonly<Record<string, string | undefined>>, file: string): Promise<Buffer> {
  const argv = ['age', '--encrypt', '--armor', ...age.recipients.flatMap((r) => ['-r', r])];
  const r = await runLocal(argv, { env, timeoutSec: age.timeoutSec, input: text });
  const failure = describeFailure(r, age.timeoutSec);
  if (r.startError === 'ENOENT') throw new InputError(`cannot write the secrets file ${file}: ${AGE_MISSING}`);
  if (failure) throw new InputError(`cannot write the secrets file ${file}: age --encrypt failed: ${failure}${stderrTail(r.stderr) ? `; stderr: ${stderrTail(r.stderr)}` : ''}; nothing was changed`);
  return r.stdout;
}

/**
 * The clear text of the age-encrypted `file` (age(1): `age --decrypt -i IDENTITY FILE`).
 * @throws InputError (exit 2) when age is missing, fails (wrong identity, damaged file: exit code
 *   and stderr tail) or times out.
 */
export async function ageDecrypt(file: string, age: NonNullable<SecretsSettings['age']>, env: Readonly<Record<string, string | undefined>>): Promise<string> {
  const r = await runLocal(['age', '--decrypt', '-i', age.identityFile, file], { env, timeoutSec: age.timeoutSec });
  if (r.startError === 'ENOENT') throw new InputError(`cannot read the secrets file ${file}: ${AGE_MISSING}`);
  const failure = describeFailure(r, age.timeoutSec);
  if (failure) {
    const tail = stderrTail(r.stderr);
    throw new InputError(`cannot decrypt the secrets file ${file} with the identity ${age.identityFile} (secretsFile.identityFile): age --decrypt failed: ${failure}${tail ? `; stderr: ${tail}` : ''}`);
  }
  return r.stdout.toString('utf8');
}
