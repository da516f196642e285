import type { ScenarioFigures } from '../drill/report.js';

/**
 * Events a run emits, one JSON object per line with `--json` and in the journal. Field names are stable.
 * Times are ISO-8601 strings; durations are seconds (floats).
 */
export type RunEvent =
  | {
      type: 'run_start';
      runId: string;
      time: string;
      command: string;
      playbook: string;
      check: boolean;
      /** The hosts whose tasks run. */
      hosts: string[];
      /** Every host `--limit` selects (all of them without it), in inventory order: the hosts a retry of this run may read. */
      limit?: string[];
      /** The first step run, when the run starts after the playbook's first step (`--from-step`, `--retry-failed`). */
      fromStep?: string;
      /** The failed run whose hosts this run retries (`--retry-failed`). */
      retryOf?: string;
    }
  | { type: 'connect'; host: string; address: string; ok: boolean; seconds: number; error?: string }
  /** A preflight finding (src/preflight/rules.ts), after every host connected and before the lock; `refuse` ends the run with exit 2. */
  | { type: 'preflight'; host: string; rule: string; severity: 'refuse' | 'warn'; message: string; fix: string }
  /**
   * A host's secrets fingerprint (src/run/fingerprint.ts), read at connect: `same`, `absent` (never
   * set up by airflow-ha), `different` (set up with other secrets: the run is refused unless
   * --new-cluster); `previous` (rotate-secret: the set before the rotation, accepted); `written` once
   * the run recorded it: before its first step, or (rotate-secret) after its last.
   */
  | { type: 'fingerprint'; host: string; status: 'same' | 'absent' | 'different' | 'previous' | 'written' }
  | { type: 'step_start'; step: string; hosts: string[] }
  | {
      type: 'task';
      step: string;
      host: string;
      task: string;
      status: 'ok' | 'changed' | 'failed';
      changes: string[];
      diff?: string;
      seconds: number;
      error?: string;
    }
  | { type: 'handler'; step: string; host: string; handler: string; status: 'changed' | 'failed'; error?: string }
  | { type: 'gate'; step: string; gate: string; host: string; status: 'waiting' | 'ok' | 'failed'; seconds: number; error?: string }
  | {
      type: 'step_end';
      step: string;
      seconds: number;
      ok: number;
      changed: number;
      failed: number;
      skipped: string[];
      /** The step's gate, when it has one and it ran: passed or not, on how many hosts, longest wait. */
      gate?: { name: string; ok: boolean; hosts: number; seconds: number };
    }
  | {
      type: 'run_end';
      runId: string;
      time: string;
      ok: boolean;
      exitCode: number;
      seconds: number;
      hosts: HostSummary[];
      error?: string;
      /** The step that failed (a task, a handler or its gate), when the run stopped in a step. */
      failedStep?: string;
      /** The hosts that failed in that step, in inventory order. */
      failedHosts?: string[];
      /** The command line that resumes the run from the failed step (POSIX shell quoting). */
      resume?: string;
    }
  /** A phase of one `airflow-ha drill` scenario (src/drill/run.ts); `end` carries the measured figures. */
  | { type: 'drill'; scenario: string; phase: DrillPhase; host: string; time: string; message: string; figures?: ScenarioFigures };

/** The phases of a drill scenario, in order (`failed`: the scenario stopped early; what it changed was undone). */
export type DrillPhase = 'start' | 'load' | 'injected' | 'detected' | 'restored' | 'healthy' | 'end' | 'failed';

/** Per-host totals printed at the end of every run. */
export interface HostSummary {
  host: string;
  ok: number;
  changed: number;
  failed: number;
  seconds: number;
}

/** Receives events as they happen (renderers, the journal). */
export interface Reporter {
  emit(event: RunEvent): void;
  /** Called once the run ended; flushes output. */
  close?(): Promise<void>;
}

/** Sends every event to each of `reporters`. */
export function fanOut(...reporters: Reporter[]): Reporter {
  return {
    emit: (e) => reporters.forEach((r) => r.emit(e)),
    close: async () => {
      for (const r of reporters) await r.close?.();
    },
  };
}
