import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import nunjucks from 'nunjucks';
import { REDACTED, Secret } from '../core/secret.js';
import { firstControlChar } from '../core/text.js';
import { file, type FileSpec } from './file.js';
import type { Task } from './task.js';

/**
 * The project's templates/ folder, found from this module's location (works from src/ via a
 * loader and from dist/src/ after `tsc`).
 */
export function templatesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'templates');
    if (existsSync(path.join(candidate, '.templates-root'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('templates/ folder not found (expected beside package.json)');
}

let env: nunjucks.Environment | undefined;
/** Set by the `reveal` filter: did the rendering under way put a secret's clear text in? */
let revealed = false;
/** While true, the `reveal` filter gives `***`: a rendering for diffs (see {@link renderTracked}). */
let redacting = false;

/**
 * The template engine: Nunjucks (Jinja2 syntax, familiar from Ansible) with `throwOnUndefined`
 * (a missing variable is an error, never an empty string) and `autoescape: false` (configs are not
 * HTML). Filters: `reveal` gives a Secret's clear text (a bare Secret renders as `***`);
 * `quote` POSIX-quotes for shell snippets inside templates.
 * Source: https://mozilla.github.io/nunjucks/api.html#configure
 */
export function templateEnv(): nunjucks.Environment {
  if (env) return env;
  env = new nunjucks.Environment(new nunjucks.FileSystemLoader(templatesDir(), { noCache: false }), {
    autoescape: false,
    throwOnUndefined: true,
    trimBlocks: true,
    lstripBlocks: true,
  });
  env.addFilter('reveal', (v: unknown) => {
    if (!(v instanceof Secret)) throw new Error('reveal: value is not a Secret');
    revealed = true;
    return redacting ? REDACTED : v.reveal();
  });
  return env;
}

/**
 * A value a template refuses: a string holding a control character. Thrown before anything is
 * rendered; `variable` is its path in the template's variables (`instances[0].interface`).
 */
export class TemplateValueError extends Error {
  constructor(
    readonly template: string,
    readonly variable: string,
    /** The character found, as `U+000A`. */
    readonly char: string,
  ) {
    super(
      `template ${template}: variable ${variable} holds ${char}: refusing to render it (a control character such as a newline would add lines to the config)`,
    );
    this.name = 'TemplateValueError';
  }
}

/**
 * The second line of defence behind the inventory's patterns (src/inventory/schema.ts): every string
 * reachable from `vars` (through arrays, plain objects and Secrets) holds no control character
 * (src/core/text.ts). A newline in a value would add a line of the writer's choosing to a config (a
 * HAProxy section, a keepalived script, an apt pin). Secrets are checked too, never shown.
 * @throws TemplateValueError naming the template and the variable.
 */
export function assertPrintableVars(template: string, vars: Record<string, unknown>): void {
  const visit = (v: unknown, at: string): void => {
    const text = typeof v === 'string' ? v : v instanceof Secret ? v.reveal() : undefined;
    if (text !== undefined) {
      const char = firstControlChar(text);
      if (char) throw new TemplateValueError(template, at, char);
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => visit(item, `${at}[${i}]`));
    } else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, item] of Object.entries(v)) visit(item, at === '' ? k : `${at}.${k}`);
    }
  };
  visit(vars, '');
}

/**
 * Renders `templates/NAME` with `vars`. Throws an Error naming the template and the undefined
 * variable or syntax error (Nunjucks's message carries line and column), and a
 * {@link TemplateValueError} for a value with a control character ({@link assertPrintableVars}).
 */
export function renderTemplate(name: string, vars: Record<string, unknown>): string {
  return renderTracked(name, vars).text;
}

/**
 * {@link renderTemplate}, also telling whether the text holds a secret (the template used the
 * `reveal` filter) and, if so, the text with every secret as `***` (for diffs: src/tasks/file.ts).
 * Rendering is synchronous, so the module's flags belong to this call alone.
 */
export function renderTracked(name: string, vars: Record<string, unknown>): { text: string; holdsSecrets: boolean; redacted?: string } {
  revealed = false;
  redacting = false;
  assertPrintableVars(name, vars);
  try {
    const text = templateEnv().render(name, vars);
    if (!revealed) return { text, holdsSecrets: false };
    redacting = true;
    return { text, holdsSecrets: true, redacted: templateEnv().render(name, vars) };
  } catch (e) {
    const msg = (e as Error).message;
    // Nunjucks gives `[Line N, Column M]` but not the variable: show the template line too.
    const at = /\[Line (\d+), Column (\d+)\]/.exec(msg);
    let source = '';
    if (at) {
      try {
        const line = readFileSync(path.join(templatesDir(), name), 'utf8').split('\n')[Number(at[1]) - 1];
        if (line !== undefined) source = `\n  line ${at[1]}: ${line.trim()}`;
      } catch {
        // the template itself was not found: the message already says so
      }
    }
    throw new Error(`template ${name}: ${msg.replace(/^\(.*?\)\s*/, '').replace(/\s+/g, ' ').trim()}${source}`);
  } finally {
    redacting = false;
  }
}

/**
 * Task: a file rendered from templates/`template` with `vars` (see {@link file} for the rest). A
 * template that reveals a secret makes a file that holds secrets: its diff compares redacted
 * renderings, so neither a current nor an old secret shows. `holdsSecrets` set by hand (e.g. for
 * password hashes, which no filter marks) hides every line of the diff instead.
 */
export function template(spec: Omit<FileSpec, 'content'> & { template: string; vars: Record<string, unknown> }): Task {
  const { text, holdsSecrets, redacted } = renderTracked(spec.template, spec.vars);
  return file({
    ...spec,
    content: text,
    holdsSecrets: Boolean(spec.holdsSecrets) || holdsSecrets,
    ...(redacted === undefined ? {} : { redacted }),
    label: spec.label ?? `template ${spec.path}`,
  });
}
