import type { Cmd } from '../core/cmd.js';
import type { Secret } from '../core/secret.js';
import type { HostFacts } from '../facts/host.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { RoleNeed } from '../inventory/rules.js';
import type { Host, Inventory, Role } from '../inventory/schema.js';
import type { FileTree } from '../tasks/release.js';
import type { Task } from '../tasks/task.js';

/** Which hosts a step targets: hosts having any of `roles`, plus hosts named in `names`; `all` for every host. */
export interface Selector {
  all?: boolean;
  roles?: readonly Role[];
  names?: readonly string[];
  /** No host at all unless some host of the inventory has this role (node_exporter everywhere, only with a monitoring host). */
  onlyWith?: Role;
}

/** An SSH key pair in OpenSSH formats: the private key (PEM `OPENSSH PRIVATE KEY`) and its public line. */
export interface SshKeypair {
  privateKey: Secret;
  /** `ssh-ed25519 AAAA... comment`. */
  publicKey: string;
}

/**
 * The cluster's TLS files as made on the operator's machine (src/cli/tls.ts, `cluster.tls`): the CA
 * certificate (PEM) and, per host name, its certificate (PEM) and private key (PEM, a Secret).
 */
export interface TlsMaterial {
  caCert: string;
  hosts: Readonly<Record<string, { cert: string; key: Secret }>>;
}

/**
 * What the operator's machine gives a run besides the inventory and the secrets, read by src/cli
 * (tasks never read local files): the DAG folder (dags.mode sync, `deploy-dags`), the key pair of
 * the workers for the target hosts (`<state>/target_ed25519`), and the host keys airflow-ha trusts.
 */
export interface OperatorInputs {
  /** The DAG folder, read (once) when first called; throws when it cannot be read. */
  dags?(): FileTree;
  targetKey?: SshKeypair;
  /** dags.mode git: the deploy key the Airflow hosts clone the DAG repository with (`<state>/dags_git_ed25519`). */
  dagsGitKey?: SshKeypair;
  /** The CA and each host's certificate and key, when `cluster.tls.enabled`. */
  tls?: TlsMaterial;
  /** pgBackRest's key pairs, repository host and PostgreSQL hosts (`<state>/backup_repo_ed25519`, `backup_pg_ed25519`), when a host has the role backup. */
  backupKeys?: { repo: SshKeypair; pg: SshKeypair };
  /** The S3 credentials of `cluster.backup.s3`, read from the environment variables it names. */
  backupS3Keys?: { key: Secret; secret: Secret };
  /**
   * The keys (`type base64`) `<state>/known_hosts` holds for an inventory host. Read when called:
   * tasks are built after every targeted host is connected, so a key recorded on first use in this
   * same run (--accept-new-host-keys) is there.
   */
  hostKeys?(host: Host): string[];
}

/** What a step's task builder gets: the inventory, the secrets and this host's facts. Pure data. */
export interface PlayContext {
  inventory: Inventory;
  secrets: ClusterSecrets;
  host: Host;
  facts: HostFacts;
  /** Inputs from the operator's machine; absent in offline uses that do not need them. */
  operator?: OperatorInputs;
}

/**
 * A gate: a read-only check that must pass before the next step starts (e.g. etcd healthy on every
 * member, a Patroni leader elected). Retried every `intervalSec` until `timeoutSec` seconds pass.
 */
export interface Gate {
  name: string;
  /** Run the check on the first targeted host, or on each targeted host. */
  on: 'first' | 'each';
  check(ctx: PlayContext): Cmd;
  timeoutSec: number;
  intervalSec?: number;
}

/**
 * One step of a playbook: its hosts run in parallel (or `serial` at a time, for rolling work),
 * with a barrier after it, and an optional gate the next step waits on.
 */
export interface Step {
  name: string;
  hosts: Selector;
  /**
   * At most this many hosts change at once; a batch must finish before the next starts. Hosts are
   * planned in parallel first: those before the first host with a change finish together (they
   * only run read-only waits); from that host on, batches of `serial`, each planning at its turn.
   */
  serial?: number;
  tasks(ctx: PlayContext): Task[];
  gate?: Gate;
  /**
   * Roles this step cannot do without, each with what the step needs its hosts for. A step whose
   * selector matches no host is skipped; a role named here without a host is instead an inventory
   * error (`role:required`) before anything connects. Read by {@link roleNeeds}.
   */
  needs?: readonly { role: Role; why: string }[];
}

/** An ordered list of steps (the data of playbooks/*.ts: no I/O). */
export interface Playbook {
  name: string;
  description: string;
  /**
   * Roles the inventory must have for this playbook, with the step that needs each (checked by
   * validate): {@link roleNeeds} of its steps, copied in playbooks/catalog.ts for validate.
   */
  requiredRoles: readonly RoleNeed[];
  steps: readonly Step[];
}

/** The `needs` of `steps` in step order, each role once (the first step that needs it). */
export function roleNeeds(steps: readonly Step[]): RoleNeed[] {
  const out: RoleNeed[] = [];
  for (const s of steps) {
    for (const n of s.needs ?? []) if (!out.some((o) => o.role === n.role)) out.push({ role: n.role, step: s.name, why: n.why });
  }
  return out;
}

/** The inventory hosts a selector matches, in inventory order. */
export function selectHosts(inv: Inventory, sel: Selector): Host[] {
  if (sel.onlyWith !== undefined && !inv.hosts.some((h) => h.roles.includes(sel.onlyWith!))) return [];
  return inv.hosts.filter(
    (h) => sel.all === true || (sel.roles ?? []).some((r) => h.roles.includes(r)) || (sel.names ?? []).includes(h.name),
  );
}

/**
 * Parses `--limit a,b,role` into a selector: each item is a host name or a role name.
 * Throws on an item that is neither (the message lists the valid names).
 */
export function parseLimit(inv: Inventory, limit: string | undefined): Selector {
  if (!limit) return { all: true };
  const items = limit.split(',').map((s) => s.trim()).filter(Boolean);
  const names: string[] = [];
  const roles: Role[] = [];
  for (const item of items) {
    if (inv.hosts.some((h) => h.name === item)) names.push(item);
    else if (inv.hosts.some((h) => h.roles.includes(item as Role))) roles.push(item as Role);
    else {
      throw new Error(
        `--limit: "${item}" is neither a host nor a role of this inventory (hosts: ${inv.hosts.map((h) => h.name).join(', ')}; roles: ${[...new Set(inv.hosts.flatMap((h) => h.roles))].join(', ')})`,
      );
    }
  }
  return { names, roles };
}
