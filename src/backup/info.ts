/**
 * `pgbackrest info --output=json` parsed, and what `backup list` and `status` make of it. Pure.
 *
 * The document (https://pgbackrest.org/command.html#command-info, "output" option; fields as
 * pgBackRest 2.45 prints them): an array with one object per stanza: `name`, `status {code,
 * message}` (0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data, ...),
 * `archive[] {id, min, max}` (the oldest and newest WAL segment in the repository per database),
 * and `backup[]` in the order taken: `label`, `type` (full|diff|incr), `timestamp {start, stop}`
 * (Unix seconds), `info {size, delta, repository {size, delta}}` (bytes), `archive {start, stop}`
 * (the WAL segments the backup needs), `error` (true when a page checksum failed; since 2.36).
 */

/** One backup of the repository. */
export interface BackupEntry {
  label: string;
  type: 'full' | 'diff' | 'incr';
  /** Unix seconds. */
  startSec: number;
  stopSec: number;
  /** Bytes of the database the backup covers, and what it takes in the repository. */
  sizeBytes: number;
  repoBytes: number;
  walStart?: string;
  walStop?: string;
  /** pgBackRest found a page checksum error: not a good backup. */
  error: boolean;
}

/** One stanza's state. */
export interface StanzaInfo {
  name: string;
  statusCode: number;
  statusMessage: string;
  backups: BackupEntry[];
  /** The oldest and newest WAL segment in the archive (of the current database id). */
  archiveMin?: string;
  archiveMax?: string;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});

/**
 * Parses the JSON `pgbackrest info --output=json` printed; `stanza` picks the stanza (the first
 * when absent).
 * @throws Error naming what is wrong when the text is not that document or lacks the stanza.
 */
export function parseInfo(json: string, stanza?: string): StanzaInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new Error(`pgbackrest info: not JSON (${(e as Error).message}): ${json.trim().slice(0, 120)}`);
  }
  if (!Array.isArray(doc)) throw new Error('pgbackrest info: expected a JSON array of stanzas');
  const entry = doc.map(obj).find((s) => stanza === undefined || s['name'] === stanza);
  if (!entry) throw new Error(`pgbackrest info: no stanza ${stanza ?? ''} in the repository`.replace(/ {2}/, ' '));
  const status = obj(entry['status']);
  const archives = Array.isArray(entry['archive']) ? entry['archive'].map(obj) : [];
  const last = archives[archives.length - 1];
  const backups: BackupEntry[] = (Array.isArray(entry['backup']) ? entry['backup'] : []).map((raw) => {
    const b = obj(raw);
    const ts = obj(b['timestamp']);
    const info = obj(b['info']);
    const arc = obj(b['archive']);
    const type = b['type'];
    if (type !== 'full' && type !== 'diff' && type !== 'incr') throw new Error(`pgbackrest info: backup ${String(b['label'])} has type ${JSON.stringify(type)}`);
    const walStart = str(arc['start']);
    const walStop = str(arc['stop']);
    return {
      label: String(b['label'] ?? ''),
      type,
      startSec: num(ts['start']),
      stopSec: num(ts['stop']),
      sizeBytes: num(info['size']),
      repoBytes: num(obj(info['repository'])['size']),
      ...(walStart ? { walStart } : {}),
      ...(walStop ? { walStop } : {}),
      error: b['error'] === true,
    };
  });
  const archiveMin = str(last?.['min']);
  const archiveMax = str(last?.['max']);
  return {
    name: String(entry['name'] ?? ''),
    statusCode: num(status['code']),
    statusMessage: String(status['message'] ?? ''),
    backups,
    ...(archiveMin ? { archiveMin } : {}),
    ...(archiveMax ? { archiveMax } : {}),
  };
}

/** The newest backup without error (the one a restore without a target uses), or undefined. */
export function lastGoodBackup(info: StanzaInfo): BackupEntry | undefined {
  return [...info.backups].filter((b) => !b.error).sort((a, b) => a.stopSec - b.stopSec).pop();
}

/** `1.2 GiB`, `512 KiB`, `17 B`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** `3 d 4 h`, `2 h 5 min`, `42 s`: a rounded age for people. */
export function formatAge(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  if (s < 120) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

const iso = (sec: number) => new Date(sec * 1000).toISOString().replace('.000Z', 'Z');

/** The table `airflow-ha backup list` prints: one line per backup, oldest first, then the archive's range. */
export function renderBackupList(info: StanzaInfo, nowSec: number): string {
  const head = ['label', 'type', 'started', 'took', 'age', 'size', 'in repository', 'WAL', 'state'];
  const rows = info.backups.map((b) => [
    b.label,
    b.type,
    iso(b.startSec),
    formatAge(b.stopSec - b.startSec),
    formatAge(nowSec - b.stopSec),
    formatBytes(b.sizeBytes),
    formatBytes(b.repoBytes),
    b.walStart && b.walStop ? `${b.walStart}-${b.walStop.slice(-8)}` : '-',
    b.error ? 'checksum error' : 'ok',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const lines = [`stanza ${info.name}: ${info.statusMessage} (status ${info.statusCode})`, fmt(head), ...rows.map(fmt)];
  if (rows.length === 0) lines.push('(no backup yet)');
  lines.push(`WAL archive: ${info.archiveMin && info.archiveMax ? `${info.archiveMin} .. ${info.archiveMax}` : 'empty'}`);
  return lines.join('\n');
}

/**
 * How many WAL segments lie between two segment names (`TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then
 * the log and segment numbers; PostgreSQL's XLogFileName with 16 MiB segments, 256 per log), on the
 * same timeline; undefined across timelines or for names that are not segments.
 */
export function segmentsBetween(from: string, to: string): number | undefined {
  const re = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
  const a = re.exec(from);
  const b = re.exec(to);
  if (!a || !b || a[1] !== b[1]) return undefined;
  const n = (m: RegExpExecArray) => parseInt(m[2] as string, 16) * 256 + parseInt(m[3] as string, 16);
  return n(b) - n(a);
}

/** What `pg_stat_archiver` says on one node (https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-ARCHIVER-VIEW). */
export interface ArchiverState {
  primary: boolean;
  lastArchivedWal?: string;
  /** Unix seconds; 0 when never. */
  lastArchivedSec: number;
  failedCount: number;
  lastFailedWal?: string;
  lastFailedSec: number;
  /** The WAL segment being written now (primary only). */
  currentWal?: string;
  /** The node's clock, Unix seconds. */
  nowSec: number;
}

/** The query {@link parseArchiver} reads: one `|`-separated line. */
export const ARCHIVER_SQL =
  "select not pg_is_in_recovery(), coalesce(last_archived_wal, ''), coalesce(extract(epoch from last_archived_time)::bigint, 0), failed_count, coalesce(last_failed_wal, ''), coalesce(extract(epoch from last_failed_time)::bigint, 0), case when pg_is_in_recovery() then '' else pg_walfile_name(pg_current_wal_lsn()) end, extract(epoch from now())::bigint from pg_stat_archiver";

/** Parses {@link ARCHIVER_SQL}'s line (psql -A -t, `|` separated); undefined for anything else. */
export function parseArchiver(stdout: string): ArchiverState | undefined {
  const f = stdout.trim().split('\n')[0]?.split('|') ?? [];
  if (f.length !== 8 || (f[0] !== 't' && f[0] !== 'f')) return undefined;
  const n = (s: string | undefined) => (s && /^[0-9]+$/.test(s) ? Number(s) : 0);
  return {
    primary: f[0] === 't',
    ...(f[1] ? { lastArchivedWal: f[1] } : {}),
    lastArchivedSec: n(f[2]),
    failedCount: n(f[3]),
    ...(f[4] ? { lastFailedWal: f[4] } : {}),
    lastFailedSec: n(f[5]),
    ...(f[6] ? { currentWal: f[6] } : {}),
    nowSec: n(f[7]),
  };
}

/** Segments a primary has completed but not archived yet: those between the last archived and the one being written. */
export function segmentsWaiting(a: ArchiverState): number | undefined {
  if (!a.currentWal) return undefined;
  if (!a.lastArchivedWal) return undefined;
  const d = segmentsBetween(a.lastArchivedWal, a.currentWal);
  return d === undefined ? undefined : Math.max(0, d - 1);
}
