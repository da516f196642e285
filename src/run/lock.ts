import { sh, type Cmd } from '../core/cmd.js';

/** Where the run lock lives on the cluster's first host. `mkdir` of it is atomic (POSIX mkdir(2)). */
export const LOCK_DIR = '/var/lib/airflow-ha/run.lock';

/** Who holds the lock: written into the lock directory as JSON. */
export interface LockHolder {
  /** `user@machine` of the operator. */
  holder: string;
  /** ISO-8601 time the lock was taken. */
  time: string;
  /** The command line that took it. */
  command: string;
  pid: number;
}

/** Takes the lock: exit 0 = taken; exit 17 = already held (holder printed on stdout). */
export function acquireLockCmd(holder: LockHolder): Cmd {
  return sh`mkdir -p ${'/var/lib/airflow-ha'} && if mkdir ${LOCK_DIR} 2>/dev/null; then printf '%s\\n' ${JSON.stringify(holder)} > ${`${LOCK_DIR}/holder.json`}; else cat ${`${LOCK_DIR}/holder.json`} 2>/dev/null || echo '{}'; exit 17; fi`;
}

/** Exit code of {@link acquireLockCmd} when the lock is already held. */
export const LOCK_HELD_EXIT = 17;

/** Prints the holder JSON, or nothing when the lock is free. */
export function lockStatusCmd(): Cmd {
  return sh`if [ -d ${LOCK_DIR} ]; then cat ${`${LOCK_DIR}/holder.json`} 2>/dev/null || echo '{}'; fi`;
}

/** Releases the lock (only if it is ours when `pid`/`time` are given, else unconditionally: `lock release`). */
export function releaseLockCmd(mine?: LockHolder): Cmd {
  if (!mine) return sh`rm -rf ${LOCK_DIR}`;
  return sh`if grep -qF ${`"time":"${mine.time}"`} ${`${LOCK_DIR}/holder.json`} 2>/dev/null; then rm -rf ${LOCK_DIR}; fi`;
}

/** Parses the holder JSON a lock command printed; a describable string for people. */
export function describeHolder(json: string): string {
  try {
    const h = JSON.parse(json) as Partial<LockHolder>;
    if (!h.holder) return 'unknown holder (holder.json missing or empty)';
    return `${h.holder} since ${h.time} (pid ${h.pid}): ${h.command}`;
  } catch {
    return `unreadable holder: ${json.trim().slice(0, 200)}`;
  }
}
