/** Checks on text that goes into configs and commands. */

/**
 * Control characters (Unicode general category Cc: C0 U+0000-U+001F, DEL, C1 U+0080-U+009F) and
 * the line and paragraph separators U+2028/U+2029, which some parsers also end a line at.
 * Source: Unicode Standard Annex #44 (General_Category); ECMA-262 LineTerminator.
 */
export const CONTROL_CHAR = /[\p{Cc}\u2028\u2029]/u;

/** The first control character ({@link CONTROL_CHAR}) of `s` as `U+XXXX`, or undefined when there is none. */
export function firstControlChar(s: string): string | undefined {
  const m = CONTROL_CHAR.exec(s);
  return m ? `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : undefined;
}
