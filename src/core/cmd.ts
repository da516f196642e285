import { REDACTED, Secret } from './secret.js';

/**
 * One piece of a command: literal shell text, an argument to quote, a secret to quote and mask,
 * or a whole command quoted as one word (for `sh -c WORD`, `sudo -n sh -c WORD`).
 */
type Part =
  | { readonly kind: 'raw'; readonly text: string }
  | { readonly kind: 'arg'; readonly text: string }
  | { readonly kind: 'secret'; readonly secret: Secret }
  | { readonly kind: 'word'; readonly cmd: Cmd };

/** What may be interpolated into {@link sh}: each value becomes exactly one shell word (arrays: one word each). */
export type Arg = string | number | Secret | Cmd | readonly (string | number | Secret)[];

/**
 * POSIX single-quoting: the result is one shell word whose value is exactly `s`.
 * Words made only of safe characters are left bare for readability.
 * Source: POSIX.1-2017 XCU 2.2.2 "Single-Quotes".
 */
export function quote(s: string): string {
  if (s.length > 0 && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A shell command built from quoted parts. The only ways to build one are the {@link sh} tagged
 * template (every interpolation quoted) and {@link raw} (the greppable escape hatch for literal shell).
 * `render()` gives what runs on a host; `toString()`/`toJSON()` give what people see, secrets as `***`.
 */
export class Cmd {
  private constructor(private readonly parts: readonly Part[]) {}

  /** @internal used by {@link sh} and {@link raw}. */
  static fromParts(parts: readonly Part[]): Cmd {
    return new Cmd(parts);
  }

  /** The command as the shell receives it (secrets in clear text). */
  render(): string {
    return this.parts.map((p) => renderPart(p, true)).join('');
  }

  /** The command for people: secrets replaced by `***`. */
  toString(): string {
    return this.parts.map((p) => renderPart(p, false)).join('');
  }

  toJSON(): string {
    return this.toString();
  }

  /** The secrets this command carries (to mask a host's echo of them). */
  secrets(): Secret[] {
    return this.parts.flatMap((p) =>
      p.kind === 'secret' ? [p.secret] : p.kind === 'word' ? p.cmd.secrets() : [],
    );
  }

  /** This whole command as one quoted shell word, e.g. for `sh -c ${cmd.asWord()}`. */
  asWord(): Cmd {
    return new Cmd([{ kind: 'word', cmd: this }]);
  }

  /** @internal the parts, for nesting one Cmd in another without re-quoting. */
  static partsOf(c: Cmd): readonly Part[] {
    return c.parts;
  }

  /** Joins commands with a shell separator such as `' && '`, `'; '` or `'\n'` (taken literally). */
  static join(cmds: readonly Cmd[], separator: string): Cmd {
    const parts: Part[] = [];
    cmds.forEach((c, i) => {
      if (i > 0) parts.push({ kind: 'raw', text: separator });
      parts.push(...c.parts);
    });
    return new Cmd(parts);
  }
}

function renderPart(p: Part, reveal: boolean): string {
  switch (p.kind) {
    case 'raw':
      return p.text;
    case 'arg':
      return quote(p.text);
    case 'secret':
      return reveal ? quote(p.secret.reveal()) : REDACTED;
    case 'word':
      return quote(reveal ? p.cmd.render() : p.cmd.toString());
  }
}

function partsOf(value: Arg): Part[] {
  if (value instanceof Cmd) return [...Cmd.partsOf(value)];
  if (value instanceof Secret) return [{ kind: 'secret', secret: value }];
  if (Array.isArray(value)) {
    const out: Part[] = [];
    (value as readonly (string | number | Secret)[]).forEach((v, i) => {
      if (i > 0) out.push({ kind: 'raw', text: ' ' });
      out.push(...partsOf(v));
    });
    return out;
  }
  return [{ kind: 'arg', text: String(value) }];
}

/**
 * Tagged template that builds a {@link Cmd}: literal text stays as written, every `${value}` is
 * POSIX-quoted into one word (a Secret is quoted and masked, a Cmd is inserted as already built,
 * an array becomes one word per element).
 *
 * @example sh`install -d -m ${'0755'} ${dir}`
 */
export function sh(strings: TemplateStringsArray, ...values: Arg[]): Cmd {
  const parts: Part[] = [];
  strings.forEach((s: string | undefined, i) => {
    // A tagged template gives `undefined` for a part with an escape JavaScript cannot read
    // (`\1`, `\u{zz}`; `\{` reads as `{`): dropping it would run a different command than the one written.
    if (s === undefined) throw new Error(`sh: the literal text before argument ${i + 1} has an escape JavaScript cannot read (${JSON.stringify(strings.raw[i])}): build it with raw() from a normal string`);
    if (s) parts.push({ kind: 'raw', text: s });
    if (i < values.length) parts.push(...partsOf(values[i] as Arg));
  });
  return Cmd.fromParts(parts);
}

/** Literal shell text, not quoted. The escape hatch: grep for `raw(` to review every use. */
export function raw(text: string): Cmd {
  return Cmd.fromParts([{ kind: 'raw', text }]);
}
