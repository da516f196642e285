/**
 * The backup settings the Patroni component needs too (kept apart from ./backup.ts, which builds on
 * ./patroni.ts, so neither imports the other): which host holds the repository, the stanza, and
 * the WAL archiving parameters. See ./backup.ts for the layout and its sources.
 */
import type { Host, Inventory } from '../inventory/schema.js';

/** The host of role `backup`, or undefined when backups are off (validate allows one at most: `backup:hosts`). */
export function backupHost(inv: Inventory): Host | undefined {
  return inv.hosts.find((h) => h.roles.includes('backup'));
}

/** The pgBackRest stanza: `cluster.backup.stanza`, else `cluster.name`. */
export function backupStanza(inv: Inventory): string {
  return inv.cluster.backup.stanza ?? inv.cluster.name;
}

/**
 * The PostgreSQL parameters WAL archiving needs, for every Patroni node's local
 * `postgresql.parameters` (empty without a backup host). archive-push runs as postgres on the
 * node that leads; it returns non-zero until the segment is in the repository, and PostgreSQL
 * retries it (https://pgbackrest.org/command.html#command-archive-push).
 */
export function backupParameters(inv: Inventory): Record<string, string> {
  if (!backupHost(inv)) return {};
  return { archive_mode: 'on', archive_command: `pgbackrest --stanza=${backupStanza(inv)} archive-push %p` };
}

