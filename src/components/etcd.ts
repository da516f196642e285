/**
 * etcd: the 3-member DCS Patroni stores its leader lock in (../reference/ha-stack.md "etcd").
 * Desired state only: tasks and facts, no connection.
 *
 * How the Debian package's auto-start is handled: etcd-server's postinst starts etcd.service at
 * once (dh_installsystemd), with the Debian default single-node config. We write the env file
 * /etc/default/etcd (a conffile; the package install keeps ours thanks to --force-confold) BEFORE
 * installing, so the first start is already the clustered member. The data dir is our own
 * (/var/lib/etcd/<cluster>), never the package default /var/lib/etcd/default: if a default
 * single-node etcd ran before, its data is left where it is, never wiped and never joined.
 */
import { sh, type Cmd } from '../core/cmd.js';
import type { Fact } from '../facts/fact.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import { monitored } from '../inventory/ports.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { pathFact, sha256, unifiedDiff } from '../tasks/file.js';
import { pgdgRepoTasks } from './repos.js';
import { packages } from '../tasks/package.js';
import { waitLoop } from '../tasks/command.js';
import { markPending, pendingRestart } from '../tasks/pending.js';
import { notifyIfActive, restartHandler, service, serviceFact } from '../tasks/systemd.js';
import type { Handler, ManagedFile, Task, TaskPlan } from '../tasks/task.js';
import { renderTemplate } from '../tasks/template.js';
import { httpPost, parseHttp } from '../status/script.js';
import { ROOT_CLIENT, scheme, serviceTlsFiles, tlsEnabled } from '../tls/plan.js';
import { tlsServiceKeyTask } from './tls.js';
import type { TlsMaterial } from '../run/playbook.js';

/** `new` bootstraps a cluster with the other members; `existing` joins a running one. */
export type EtcdClusterState = 'new' | 'existing';

/** Where etcd reads its settings and keeps its data, per OS family. */
export interface EtcdPaths {
  /** EnvironmentFile of etcd.service: Debian /etc/default/etcd (the package's unit), RHEL /etc/etcd/etcd.conf. */
  envFile: string;
  /** Data dir, one per cluster name (never the package default /var/lib/etcd/default). */
  dataDir: string;
  /** Packages: Debian etcd-server (daemon) + etcd-client (etcdctl); RHEL etcd. */
  packages: string[];
}

export function etcdPaths(inv: Inventory, family: OsFamily): EtcdPaths {
  const dataDir = `/var/lib/etcd/${inv.cluster.name}`;
  return family === 'debian'
    ? { envFile: '/etc/default/etcd', dataDir, packages: ['etcd-server', 'etcd-client'] }
    : { envFile: '/etc/etcd/etcd.conf', dataDir, packages: ['etcd'] };
}

/** The etcd members: hosts with role `etcd`, in inventory order. */
export function etcdMembers(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.includes('etcd'));
}

/** `http://IP:2379,...` of every member (client port from inventory.cluster.ports; `https://` with `cluster.tls`). */
export function etcdEndpoints(inv: Inventory, members: readonly Host[] = etcdMembers(inv)): string {
  return members.map((h) => `${scheme(inv)}://${h.address}:${inv.cluster.ports.etcdClient}`).join(',');
}

/** A member's peer URL as the cluster knows it (`--initial-advertise-peer-urls`). */
export function etcdPeerUrl(inv: Inventory, host: Host): string {
  return `${scheme(inv)}://${host.address}:${inv.cluster.ports.etcdPeer}`;
}

/** The marker line that tells our env file from one written by hand or by the package. */
const MARKER = '# Managed by airflow-ha (etcd of cluster';

/** The env file of `hostName` (throws if it is not an etcd member). */
export function renderEtcdEnv(inv: Inventory, hostName: string, state: EtcdClusterState, family: OsFamily = 'debian'): string {
  const host = etcdMembers(inv).find((h) => h.name === hostName);
  if (!host) throw new Error(`${hostName} is not an etcd member (role etcd)`);
  const { etcdClient, etcdPeer } = inv.cluster.ports;
  return renderTemplate('etcd/etcd.env.njk', {
    cluster_name: inv.cluster.name,
    name: host.name,
    address: host.address,
    data_dir: etcdPaths(inv, family).dataDir,
    client_port: etcdClient,
    peer_port: etcdPeer,
    token: `etcd-${inv.cluster.name}`,
    initial_cluster: etcdMembers(inv).map((m) => `${m.name}=${etcdPeerUrl(inv, m)}`).join(','),
    state,
    scheme: scheme(inv),
    tls: tlsEnabled(inv) ? serviceTlsFiles(inv, 'etcd') : false,
    // A monitored cluster: /metrics on a listener of its own (ETCD_LISTEN_METRICS_URLS, etcd 3.4
    // configuration "--listen-metrics-urls"), so Prometheus never reaches the client API.
    metrics_url: monitored(inv) ? `http://${host.address}:${inv.cluster.ports.etcdMetrics}` : '',
  });
}

/**
 * `etcdctl` with the v3 API and short timeouts (etcdctl(1), etcd 3.4 "etcdctl" README); with
 * `cluster.tls`, root's client certificate (`--cacert`, `--cert`, `--key`: etcd 3.4 etcdctl README
 * "Global flags"): it runs as root on a host that has the TLS files.
 */
export function etcdctl(endpoints: string, inv: Inventory): Cmd {
  const tls = tlsEnabled(inv) ? sh` --cacert=${ROOT_CLIENT.ca} --cert=${ROOT_CLIENT.cert} --key=${ROOT_CLIENT.key}` : sh``;
  return sh`ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=4s${tls} --endpoints=${endpoints}`;
}

/** What this member's host holds: its data dir, and the env file already in place. */
export interface EtcdLocalState {
  /** `<dataDir>/member` exists: the member has started once and owns cluster data. */
  hasData: boolean;
  /** The env file has an uncommented ETCD_INITIAL_CLUSTER and is not ours: someone else configured etcd here. */
  foreignConfig: boolean;
}

/** Fact: {@link EtcdLocalState} of `paths` (`test -d`, `grep`). */
export function etcdLocalFact(paths: EtcdPaths): Fact<EtcdLocalState> {
  return {
    key: `etcd-local:${paths.dataDir}:${paths.envFile}`,
    cmd: sh`if [ -d ${`${paths.dataDir}/member`} ]; then echo data; else echo empty; fi; f=${paths.envFile}; if [ -f "$f" ] && ! grep -qF ${MARKER} "$f" && grep -q '^[[:space:]]*ETCD_INITIAL_CLUSTER=' "$f"; then echo foreign; else echo ours; fi`,
    parse(stdout) {
      const [data, conf] = stdout.split('\n');
      return { hasData: data === 'data', foreignConfig: conf === 'foreign' };
    },
  };
}

/** etcd's v3 JSON gateway path of `MemberList` (https://etcd.io/docs/v3.4/dev-guide/api_grpc_gateway/): a POST with a JSON body. */
const MEMBER_LIST_PATH = '/v3/cluster/member/list';

/** Seconds one other member may take to answer {@link etcdMemberListFact}. */
const MEMBER_LIST_TIMEOUT_SEC = 3;

/**
 * What one OTHER member says when asked for the cluster's members:
 * - `members`: it answered with a member list (`peerUrls`: every member's peer URLs, added-but-unstarted ones included);
 * - `down`: nothing answered on its client port (connection refused, timeout): no etcd runs there;
 * - `unreadable`: something answered, but not with a member list (`detail`: what came back).
 */
export type EtcdPeerView =
  | { peer: string; kind: 'members'; peerUrls: string[] }
  | { peer: string; kind: 'down' }
  | { peer: string; kind: 'unreadable'; detail: string };

/**
 * Reads one answer to `POST /v3/cluster/member/list` (the raw HTTP/1.0 response): a 200 whose JSON
 * body has `members[].peerURLs` is a member list (a cluster without members has no `members` key:
 * an empty list); no status line is `down`; anything else is `unreadable`. Pure.
 */
export function parseMemberListAnswer(peer: string, response: string): EtcdPeerView {
  const { status, body } = parseHttp(response);
  if (status === 0) return { peer, kind: 'down' };
  if (status !== 200) return { peer, kind: 'unreadable', detail: `HTTP ${status}: ${body.trim().slice(0, 160)}` };
  let doc: { members?: Array<{ peerURLs?: unknown }> } | undefined;
  try {
    doc = JSON.parse(body) as typeof doc;
  } catch {
    return { peer, kind: 'unreadable', detail: `HTTP 200 with a body that is not JSON: ${body.trim().slice(0, 160)}` };
  }
  if (doc === null || typeof doc !== 'object' || (doc.members !== undefined && !Array.isArray(doc.members))) {
    return { peer, kind: 'unreadable', detail: `HTTP 200 without a member list: ${body.trim().slice(0, 160)}` };
  }
  const peerUrls = (doc.members ?? []).flatMap((m) => (Array.isArray(m.peerURLs) ? m.peerURLs.map(String) : []));
  return { peer, kind: 'members', peerUrls };
}

/**
 * Fact: what the other member `peer` says ({@link EtcdPeerView}), asked over its client port's v3
 * JSON gateway (on by default: `--enable-grpc-gateway`, etcd 3.4/3.5) with a raw HTTP request from
 * bash's /dev/tcp. Nothing of etcd is needed on this host: a rebuilt member without etcdctl still
 * learns that its cluster exists (etcdctl, which the package brings, is not installed yet when this
 * is read on a fresh host).
 */
export function etcdMemberListFact(inv: Inventory, peer: Host): Fact<EtcdPeerView> {
  const url = `${scheme(inv)}://${peer.address}:${inv.cluster.ports.etcdClient}${MEMBER_LIST_PATH}`;
  return {
    key: `etcd-members:${url}`,
    // Over TLS a handshake that fails (no certificate on this host yet) is "unreadable", never "down".
    cmd: sh`timeout ${MEMBER_LIST_TIMEOUT_SEC} ${httpPost(url, '{}', tlsEnabled(inv) ? ROOT_CLIENT : undefined)} 2>/dev/null`,
    parse: (stdout) => parseMemberListAnswer(peer.name, stdout),
  };
}

/**
 * Decides `ETCD_INITIAL_CLUSTER_STATE` for one member (read by etcd only when its data dir is empty)
 * from what the other members say ({@link EtcdPeerView}, one per other member).
 * - data dir not empty: keep what the file says (`current`) so a running member never changes; else `existing`.
 * - empty, a member lists this member's peer URL (added with `member add`, or a rebuilt member the
 *   cluster still knows): `existing`.
 * - empty, a member answers with a list without it: throws (replacing a member is `etcdctl member add` first).
 * - empty, a member answered but not with a member list: throws (whether a cluster exists is
 *   unknown, and `new` beside a live cluster would start a second one).
 * - empty, every other member is down (or there is none): `new` (bootstrap).
 */
export function decideEtcdState(
  local: EtcdLocalState,
  peers: readonly EtcdPeerView[],
  current: EtcdClusterState | undefined,
  peerUrl: string,
  hostName: string,
): EtcdClusterState {
  if (local.hasData) return current ?? 'existing';
  const lists = peers.filter((v) => v.kind === 'members');
  if (lists.some((v) => v.peerUrls.includes(peerUrl))) return 'existing';
  if (lists.length > 0) {
    throw new Error(
      `etcd member ${hostName} has an empty data dir but the other members (${lists.map((v) => v.peer).join(', ')}) already form a cluster without it: ` +
        `add it first with \`etcdctl member add ${hostName} --peer-urls=${peerUrl}\` (airflow-ha does not replace members yet)`,
    );
  }
  const unreadable = peers.filter((v) => v.kind === 'unreadable');
  if (unreadable.length > 0) {
    throw new Error(
      `etcd member ${hostName} has an empty data dir and cannot tell whether its cluster exists: ` +
        unreadable.map((v) => `${v.peer} answered ${v.detail}`).join('; ') +
        ' (expected a member list from POST /v3/cluster/member/list on the client port); refusing to start a new cluster beside a live one',
    );
  }
  return 'new';
}

/**
 * Task: the etcd env file of this member, with its cluster state decided from facts
 * ({@link decideEtcdState}). On a running member a change marks a restart pending (the first start
 * comes from the package install). Refuses an env file written by someone else.
 */
export function etcdEnvTask(inv: Inventory, host: Host, family: OsFamily): Task {
  const paths = etcdPaths(inv, family);
  const variants = {
    new: Buffer.from(renderEtcdEnv(inv, host.name, 'new', family)),
    existing: Buffer.from(renderEtcdEnv(inv, host.name, 'existing', family)),
  };
  const shaNew = sha256(variants.new);
  const shaExisting = sha256(variants.existing);
  const fileF = pathFact(paths.envFile, shaNew);
  const localF = etcdLocalFact(paths);
  const peersF = etcdMembers(inv)
    .filter((m) => m.name !== host.name)
    .map((m) => etcdMemberListFact(inv, m));
  const activeF = serviceFact('etcd');
  const peerUrl = etcdPeerUrl(inv, host);
  return {
    name: `template ${paths.envFile}`,
    facts: () => [fileF, localF, ...peersF, activeF],
    files: (): ManagedFile[] => [{ path: paths.envFile, content: variants.new, mode: '0644', owner: 'root', group: 'root' }],
    plan(facts): TaskPlan {
      const cur = facts.get(fileF);
      const local = facts.get(localF);
      if (local.foreignConfig) {
        throw new Error(`${paths.envFile} on ${host.name} configures an etcd cluster airflow-ha did not write: refusing to replace it (move it away by hand if that cluster is disposable)`);
      }
      // The state the file holds now: from its checksum, or (a hand-edited file) from its line, so
      // an edit elsewhere in the file does not also flip the state (etcd ignores it once it has data).
      const written = /^ETCD_INITIAL_CLUSTER_STATE="?(new|existing)"?$/m.exec(cur.content?.toString('utf8') ?? '')?.[1] as EtcdClusterState | undefined;
      const current = cur.sha256 === shaNew ? 'new' : cur.sha256 === shaExisting ? 'existing' : written;
      const state = decideEtcdState(local, peersF.map((f) => facts.get(f)), current, peerUrl, host.name);
      const content = variants[state];
      if (cur.exists && sha256(content) === cur.sha256) {
        if (cur.mode === '644' && cur.owner === 'root' && cur.group === 'root') return { changed: false, ops: [], changes: [], notify: [] };
      }
      // A running member of this cluster (its file is ours) restarts later, one at a time
      // ({@link etcdRollingRestart}): restarting every member at once would lose quorum. One that
      // runs the package's default single-node config serves no cluster yet: it restarts now. A
      // stopped one starts with the new file anyway.
      const running = facts.get(activeF).active === 'active';
      const clustered = cur.content?.toString('utf8').includes(MARKER) === true;
      const notify: Handler[] = !running ? [] : clustered ? [markPending(ETCD_RESTART, 'restart etcd, one member at a time')] : [restartHandler('etcd')];
      return {
        changed: true,
        ops: [{ kind: 'put', path: paths.envFile, content, mode: '0644', owner: 'root', group: 'root' }],
        diff: unifiedDiff(paths.envFile, cur.exists ? cur.content : undefined, content),
        changes: [`${cur.exists ? 'update' : 'create'} ${paths.envFile} (initial cluster state ${state})`],
        notify,
      };
    },
  };
}

/** `cluster.versions.etcd` as pins of every etcd package of `family` (none when unset). */
export function etcdPins(inv: Inventory, family: OsFamily): Record<string, string> {
  const v = inv.cluster.versions.etcd;
  return v ? Object.fromEntries(etcdPaths(inv, family).packages.map((n) => [n, v])) : {};
}

/**
 * Tasks of one etcd member: env file first (so the package's auto-start is already clustered),
 * the package source (kind upstream: PGDG, whose extras repository carries etcd for RHEL; on
 * Debian etcd stays Debian's own), the packages pinned to `cluster.versions.etcd` and held, then
 * the service enabled and started. A changed file on a running member restarts etcd (etcd has no reload).
 */
export function etcdTasks(inv: Inventory, host: Host, facts: HostFacts, tls?: TlsMaterial): Task[] {
  const paths = etcdPaths(inv, facts.family);
  return [
    etcdEnvTask(inv, host, facts.family),
    ...(facts.family === 'rhel' ? pgdgRepoTasks(inv, facts) : []),
    packages({ names: paths.packages, versions: etcdPins(inv, facts.family) }),
    // After the package, which creates the etcd user (a first start before it has the key fails
    // and is retried by the service task below). A new key on a running member restarts it in turn.
    ...tlsServiceKeyTask(inv, host, tls, 'etcd', [markPending(ETCD_RESTART, 'restart etcd, one member at a time')]).map((t) => notifyIfActive(t, 'etcd')),
    service({ name: 'etcd', enabled: true, state: 'started' }),
  ];
}

/** Name of the pending marker of an etcd restart (see src/tasks/pending.ts). */
export const ETCD_RESTART = 'etcd-restart';

/**
 * Task of one member, for a step with `serial: 1`: if a config change left a restart pending,
 * restart etcd and wait (at most 120 s) until every member reports healthy again before the next
 * member's turn, so the cluster keeps its quorum throughout.
 */
export function etcdRollingRestart(inv: Inventory): Task {
  return pendingRestart({
    marker: ETCD_RESTART,
    name: 'restart etcd for its new config (one member at a time)',
    cmd: sh`systemctl restart etcd && ${waitLoop({ cmd: etcdHealthyCheck(inv), timeoutSec: 120, intervalSec: 1 })}`,
    timeoutSec: 150,
  });
}

/**
 * Gate command: every member reports healthy (`etcdctl endpoint health --cluster` prints one
 * "<url> is healthy" line per member, exit 0 only if all are).
 */
export function etcdHealthyCheck(inv: Inventory): Cmd {
  const n = etcdMembers(inv).length;
  return sh`test "$(${etcdctl(etcdEndpoints(inv), inv)} endpoint health --cluster 2>&1 | grep -c ' is healthy')" -eq ${n}`;
}
