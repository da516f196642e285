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
