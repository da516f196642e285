import { inspect } from 'node:util';

/** What every rendering of a secret meant for people shows instead of its value. */
export const REDACTED = '***';

/**
 * A secret value (password, key, cookie). Every way of turning it into text for people —
 * `String()`, template literals, `JSON.stringify`, `util.inspect`/`console.log` — yields `***`.
 * Only {@link Secret.reveal} returns the value, and only code that writes it to a host or a
 * 0600 file should call it (greppable on purpose).
 */
export class Secret {
  readonly #value: string;

  /** @param value the clear text; an empty string is refused (a missing secret is a bug). */
  constructor(value: string) {
    if (typeof value !== 'string' || value.length === 0) throw new TypeError('a Secret cannot be empty');
    this.#value = value;
  }

  /** The clear text. Call only where the value must reach a host or the secrets file. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/**
 * Replaces every occurrence of each secret's value in `text` with `***`.
 * Used on anything a host sends back (stderr tails, diffs of rendered files) before it is shown.
 * Values shorter than 4 characters are not masked (they would mask ordinary text).
 */
export function maskSecrets(text: string, secrets: Iterable<Secret>): string {
  let out = text;
  const values = [...secrets].map((s) => s.reveal()).filter((v) => v.length >= 4);
  // Longest first, so a secret that contains another is masked whole.
  values.sort((a, b) => b.length - a.length);
  for (const v of values) out = out.split(v).join(REDACTED);
  return out;
}
