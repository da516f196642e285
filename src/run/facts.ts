import { randomBytes } from 'node:crypto';
import { Cmd, sh } from '../core/cmd.js';
import { FactSet, splitMarkedOutputs, type Fact, type FactOutput } from '../facts/fact.js';
import type { Connection } from '../ssh/transport.js';

/**
 * One shell script that runs every fact command (each in a subshell, stdin closed, stderr dropped)
 * and prints each one's stdout followed by a marker line `@@<nonce> <index> <exit code>`.
 * A random nonce means no fact output can forge a marker.
 */
export function factScript(facts: readonly Fact<unknown>[], nonce: string): Cmd {
  return Cmd.join(
    facts.map((f, i) => sh`( ${f.cmd} ) </dev/null 2>/dev/null; printf ${`\n@@${nonce} ${i} %d\n`} "$?"`),
    '\n',
  );
}

/** Splits the output of {@link factScript} back into one output per fact (by index). */
export function parseFactOutput(stdout: string, count: number, nonce: string): FactOutput[] {
  return splitMarkedOutputs(stdout, count, nonce).map((o, i) => {
    if (!o) throw new Error(`fact script output is incomplete: no result for fact #${i}`);
    return o;
  });
}

/** Unique facts by key, in first-seen order. */
export function uniqueFacts(facts: Iterable<Fact<unknown>>): Fact<unknown>[] {
  const seen = new Map<string, Fact<unknown>>();
  for (const f of facts) if (!seen.has(f.key)) seen.set(f.key, f);
  return [...seen.values()];
}

/**
 * Gathers `facts` on one connection in ONE round trip. Throws when the host's shell fails as a whole
 * (the error carries the stderr tail) or the connection is lost.
 */
export async function gatherFacts(conn: Connection, facts: readonly Fact<unknown>[]): Promise<FactSet> {
  const unique = uniqueFacts(facts);
  if (unique.length === 0) return new FactSet(new Map());
  const nonce = randomBytes(8).toString('hex');
  const res = await conn.exec(factScript(unique, nonce));
  let outputs: FactOutput[];
  try {
    outputs = parseFactOutput(res.stdout, unique.length, nonce);
  } catch (e) {
    const tail = res.stderr.trim().split('\n').slice(-10).join('\n');
    throw new Error(`gathering facts failed (exit ${res.code ?? 'none'}): ${(e as Error).message}${tail ? `\n${tail}` : ''}`);
  }
  const map = new Map<string, FactOutput>();
  unique.forEach((f, i) => map.set(f.key, outputs[i] as FactOutput));
  return new FactSet(map);
}
