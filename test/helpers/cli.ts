/**
 * The CLI's main() run in-process, its output captured: for tests of flags, help and messages of
 * commands that reach no host.
 */
import { colourWanted, main } from '../../src/cli/main.js';
import { ROOT } from './lab.js';

/** What one in-process run printed and returned. */
export interface MainResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `airflow-ha ARGS` through main() with `env` as its whole environment (default: none) in
 * `cwd` (default: the repository), not on a terminal unless `isTTY`; colour as `env` and `isTTY` ask.
 */
export async function runMain(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; isTTY?: boolean } = {}): Promise<MainResult> {
  const env = opts.env ?? {};
  let stdout = '';
  let stderr = '';
  const code = await main(['node', 'airflow-ha', ...args], {
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
    isTTY: Boolean(opts.isTTY),
    colour: colourWanted(env, Boolean(opts.isTTY)),
    env,
    cwd: opts.cwd ?? ROOT,
  });
  return { code, stdout, stderr };
}
