import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Reporter, RunEvent } from './events.js';

/**
 * A reporter that appends every event, with its run id, as one JSON line to
 * `<stateDir>/journal.jsonl` (synchronously, so a crash loses nothing already emitted).
 */
export function journalReporter(stateDir: string, runId: string): Reporter {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, 'journal.jsonl');
  return {
    emit(event: RunEvent) {
      appendFileSync(file, `${JSON.stringify({ runId, ...event })}\n`, { mode: 0o600 });
    },
  };
}
