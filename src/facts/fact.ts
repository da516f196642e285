import type { Cmd } from '../core/cmd.js';

/**
 * A fact: a read-only command and a parser of what it prints (the pyinfra model).
 * Facts of one step on one host are batched by the runner into ONE shell script (one round trip);
 * `key` dedupes identical facts between tasks, so it must identify the command exactly.
 * The command's stderr is discarded; its exit code is passed to the parser.
 */
export interface Fact<T> {
  readonly key: string;
  readonly cmd: Cmd;
  parse(stdout: string, exitCode: number): T;
}

/** The raw output of one fact command. */
export interface FactOutput {
  stdout: string;
  code: number;
}

/**
 * Splits a script's stdout into the outputs its marker lines delimit: each output is followed by
 * `\n@@<nonce> <index> <exit code>\n` (the fact script of src/run/facts.ts, the status probe script
 * of src/status/script.ts). Reading starts at `from` (the status script prints a clock line first).
 * Returns one entry per index below `count`, undefined where no marker came.
 */
export function splitMarkedOutputs(stdout: string, count: number, nonce: string, from = 0): Array<FactOutput | undefined> {
  const outputs: Array<FactOutput | undefined> = Array.from({ length: count }, () => undefined);
  const re = new RegExp(`\\n@@${nonce} (\\d+) (\\d+)\\n`, 'g');
  let start = from;
  for (const m of stdout.slice(from).matchAll(re)) {
    const at = from + (m.index ?? 0);
    const i = Number(m[1]);
    if (i < count) outputs[i] = { stdout: stdout.slice(start, at), code: Number(m[2]) };
    start = at + m[0].length;
  }
  return outputs;
}

/** Facts gathered on one host, looked up by the Fact that asked for them. */
export class FactSet {
  constructor(private readonly outputs: ReadonlyMap<string, FactOutput>) {}

  /** The parsed value. Throws if the fact was not gathered (a task forgot to declare it: a bug). */
  get<T>(fact: Fact<T>): T {
    const out = this.outputs.get(fact.key);
    if (!out) throw new Error(`fact ${fact.key} was not gathered (declare it in the task's facts())`);
    return fact.parse(out.stdout, out.code);
  }
}
