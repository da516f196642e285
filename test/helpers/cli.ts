/**
 * The CLI's main() run in-process, its output captured: for tests of flags, help and messages that
 * connect to nothing.
 */
import { main } from '../../src/cli/main.js';
import { ROOT } from './lab.js';

/** What one in-process run printed and returned. */
export interface MainResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `airflow-ha ARGS` through main() with `env` as its whole environment (default: none) in
 * `cwd` (default: the repository), not on a terminal unless `isTTY`.
 */
export async function runMain(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; isTTY?: boolean } = {}): Promise<MainResult> {
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
    env: opts.env ?? {},
    cwd: opts.cwd ?? ROOT,
  });
  return { code, stdout, stderr };
}
