/** Local files the CLI writes for the operator. */
import { rename, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A path of the inventory on this machine: `~` and `~/...` expanded, others resolved against `baseDir` (the inventory's folder). */
export function expandPath(p: string, baseDir: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(baseDir, p);
}

/**
 * Writes `data` to `file` atomically: a temp file in the same folder, then rename(2), so a reader
 * (or a crash) sees the old content or the new one, never half of it. `mode` defaults to the mode
 * of the file being replaced. Throws the fs error (e.g. ENOENT for a missing folder).
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode?: number): Promise<void> {
  const m = mode ?? (await stat(file)).mode & 0o777;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.airflow-ha-${process.pid}.tmp`);
  await writeFile(tmp, data, { mode: m });
  await rename(tmp, file);
}
