/**
 * RabbitMQ, the Celery broker: a cluster of the `rabbitmq` hosts formed by classic-config peer
 * discovery, with one Erlang cookie, a declarative config and definitions (users, vhost,
 * permissions) imported at boot. Facts and pitfalls: ../shared/reference/ha-stack.md "RabbitMQ".
 *
 * Sources: https://www.rabbitmq.com/docs/cluster-formation (classic config, cookie),
 * https://www.rabbitmq.com/docs/configure (rabbitmq.conf keys, checked against 3.10.8's
 * priv/schema/rabbit.schema), https://www.rabbitmq.com/docs/definitions (import at boot),
 * https://www.rabbitmq.com/docs/passwords#computing-password-hash, Debian's rabbitmq-server
 * 3.10.8-1.1+deb12u1 postinst (user, cookie and /etc/rabbitmq ownership).
 */
import { createHash, createHmac } from 'node:crypto';
import { sh } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { Secret } from '../core/secret.js';
import type { HostFacts, OsFamily } from '../facts/host.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import { monitored } from '../inventory/ports.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { command, waitFor, waitLoop } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { httpGet, type BasicAuth } from '../tasks/http.js';
import { packages, type PackageSpec } from '../tasks/package.js';
import { selinuxPorts, type PortLabel } from '../tasks/selinux.js';
import { service } from '../tasks/systemd.js';
import { group, user } from '../tasks/system.js';
import type { Handler, Task } from '../tasks/task.js';
import { renderTemplate, template } from '../tasks/template.js';
import { serviceTlsFiles, tlsEnabled } from '../tls/plan.js';
import { debianErlangVersion, erlangAptPin, rabbitmqRepoTasks } from './repos.js';
import type { TlsMaterial } from '../run/playbook.js';
import { tlsServiceKeyTask } from './tls.js';

/** Paths the same on Debian 12 and on RHEL 9 (Team RabbitMQ's / EPEL's RPM): both packages use them. */
export const RABBITMQ_PATHS = {
  conf: '/etc/rabbitmq/rabbitmq.conf',
  plugins: '/etc/rabbitmq/enabled_plugins',
  definitions: '/etc/rabbitmq/definitions.json',
  cookie: '/var/lib/rabbitmq/.erlang.cookie',
  home: '/var/lib/rabbitmq',
} as const;

export const RABBITMQ_SERVICE = 'rabbitmq-server';
/** The vhost Airflow's Celery uses (the seeds' broker_url `amqp://airflow:...@.../airflow_host`). */
export const AIRFLOW_VHOST = 'airflow_host';
export const AIRFLOW_USER = 'airflow';
export const ADMIN_USER = 'admin';

/**
 * Default `consumer_timeout` in milliseconds: 24 h. Airflow's Celery executor acknowledges a task
 * message only when the task ends (acks late, airflow#15799); a delivery unacknowledged for longer
 * than consumer_timeout (RabbitMQ default 30 min) closes the worker's channel and the task is
 * delivered again. It must exceed the longest Airflow task: raise it with the host var
 * `rabbitmq_consumer_timeout_ms` (on the first `rabbitmq` host; one value for the cluster).
 */
export const DEFAULT_CONSUMER_TIMEOUT_MS = 24 * 3600 * 1000;

/**
 * The port Celery reaches the brokers on: `ports.rabbitmqAmqps` (AMQP over TLS, 5671) with
 * `cluster.tls.enabled`, where the plaintext listener is closed (`listeners.tcp = none`), else
 * `ports.rabbitmqAmqp` (5672). https://www.rabbitmq.com/docs/ssl ("Enabling TLS Support in RabbitMQ").
 */
export function brokerPort(inv: Inventory): number {
  return tlsEnabled(inv) ? inv.cluster.ports.rabbitmqAmqps : inv.cluster.ports.rabbitmqAmqp;
}

/**
 * With `cluster.tls.enabled`, the TLS files of the AMQPS listener (rabbitmq.conf `ssl_options.*`):
 * the cluster CA, the host's certificate and RabbitMQ's own copy of its key (0600 rabbitmq).
 * Clients must present a certificate of the CA (`verify_peer`, `fail_if_no_peer_cert`) and still
 * log in with their password. Null without TLS.
 */
export function rabbitmqTls(inv: Inventory): { ca: string; cert: string; key: string } | null {
  return tlsEnabled(inv) ? serviceTlsFiles(inv, 'rabbitmq') : null;
}

/** Every broker as Celery's broker_url and the drill's publisher list them: `address:port` of each `rabbitmq` host in inventory order, on {@link brokerPort}. */
export function brokerNodes(inv: Inventory): string[] {
  return rabbitmqHosts(inv).map((h) => `${h.address}:${brokerPort(inv)}`);
}

/** The `rabbitmq` hosts in inventory order. */
export function rabbitmqHosts(inv: Inventory): Host[] {
  return inv.hosts.filter((h) => h.roles.includes('rabbitmq'));
}

/** Erlang node name of a host: `rabbit@<short name>` (RabbitMQ's default, from `hostname -s`). */
export function nodeName(host: Pick<Host, 'name'>): string {
  return `rabbit@${host.name}`;
}

/**
 * RabbitMQ's salted SHA-256 password hash (`rabbit_password_hashing_sha256`):
 * base64(salt ‖ sha256(salt ‖ utf8(password))) with a 4-byte salt.
 * Source: https://www.rabbitmq.com/docs/passwords#computing-password-hash
 */
export function rabbitPasswordHash(password: string, salt: Buffer): string {
  if (salt.length !== 4) throw new Error(`rabbitPasswordHash: the salt is 4 bytes, got ${salt.length}`);
  const digest = createHash('sha256').update(Buffer.concat([salt, Buffer.from(password, 'utf8')])).digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

/**
 * The salt of a user's hash, derived instead of drawn at random so that a re-run renders the same
 * definitions file (no change, no re-import): the first 4 bytes of
 * HMAC-SHA256(key = the password, message = `airflow-ha rabbitmq salt <cluster> <user>`).
 * The salt stays unique per cluster and user (the cluster name is in the message) and reveals
 * nothing usable: it is a one-way function of a 190-bit random password, and the hash stores it in
 * clear anyway. A new password gives a new salt.
 */
export function derivedSalt(cluster: string, userName: string, password: string): Buffer {
  return createHmac('sha256', password).update(`airflow-ha rabbitmq salt ${cluster} ${userName}`).digest().subarray(0, 4);
}

/** One user of the definitions file. */
export interface DefinitionsUser {
  name: string;
  passwordHash: string;
  /** Comma-separated user tags, as 3.10 imports them (e.g. `administrator`, `management`). */
  tags: string;
}

/** The variables of templates/rabbitmq/definitions.json.njk. */
export function definitionsVars(inv: Inventory, secrets: ClusterSecrets): Record<string, unknown> {
  const mk = (name: string, pw: Secret, tags: string): DefinitionsUser => ({
    name,
    passwordHash: rabbitPasswordHash(pw.reveal(), derivedSalt(inv.cluster.name, name, pw.reveal())),
    tags,
  });
  return {
    vhost: AIRFLOW_VHOST,
    // `management` lets Flower's broker tab (`--broker_api`) read queue lengths through the
    // management API as this user; it grants no configuration rights.
    users: [mk(ADMIN_USER, secrets.rabbitmqAdmin, 'administrator'), mk(AIRFLOW_USER, secrets.rabbitmqAirflow, 'management')],
    permissions: [
      { user: AIRFLOW_USER, vhost: AIRFLOW_VHOST },
      { user: ADMIN_USER, vhost: AIRFLOW_VHOST },
    ],
  };
}

/** The variables of templates/rabbitmq/rabbitmq.conf.njk for `inv`. */
export function rabbitmqConfVars(inv: Inventory): Record<string, unknown> {
  const first = rabbitmqHosts(inv)[0];
  const timeout = Number(first?.vars?.['rabbitmq_consumer_timeout_ms'] ?? DEFAULT_CONSUMER_TIMEOUT_MS);
  if (!Number.isInteger(timeout) || timeout <= 0) throw new Error(`rabbitmq_consumer_timeout_ms must be a positive integer (ms), got ${String(first?.vars?.['rabbitmq_consumer_timeout_ms'])}`);
  return {
    nodes: rabbitmqHosts(inv).map(nodeName),
    ports: inv.cluster.ports,
    consumer_timeout: timeout,
    memory_watermark: '0.4',
    disk_free_limit: '2GB',
    definitions_path: RABBITMQ_PATHS.definitions,
    tls: rabbitmqTls(inv),
  };
}

/** rabbitmq.conf as rendered for `inv` (the same on every node). */
export function renderRabbitmqConf(inv: Inventory): string {
  return renderTemplate('rabbitmq/rabbitmq.conf.njk', rabbitmqConfVars(inv));
}

/** definitions.json as rendered for `inv` (the same on every node). */
export function renderDefinitions(inv: Inventory, secrets: ClusterSecrets): string {
  return renderTemplate('rabbitmq/definitions.json.njk', definitionsVars(inv, secrets));
}

/**
 * The packages of a node and their pins: `rabbitmq-server` at `cluster.versions.rabbitmq`, and
 * Erlang at `cluster.versions.erlang` (RHEL: Team RabbitMQ's single `erlang` package; Debian:
 * `erlang-base` here, every other `erlang*` package through {@link erlangAptPin}). Unset versions
 * are not pinned.
 */
export function rabbitmqPackages(inv: Inventory, family: OsFamily): PackageSpec {
  const { rabbitmq, erlang } = inv.cluster.versions;
  const erlangName = family === 'rhel' ? 'erlang' : 'erlang-base';
  const versions: Record<string, string> = {};
  if (rabbitmq) versions['rabbitmq-server'] = rabbitmq;
  if (erlang) versions[erlangName] = family === 'debian' ? debianErlangVersion(erlang) : erlang;
  return { names: erlang ? [erlangName, 'rabbitmq-server'] : ['rabbitmq-server'], versions };
}

/**
 * SELinux port types of RabbitMQ's listeners on Rocky/RHEL, where the node runs confined
 * (rabbitmq_t). The policy lets it bind amqp_port_t (5671-5672 and 15671-15672: AMQP and the management
 * plugin, HTTP and HTTPS), rabbitmq_port_t (25672, inter-node), epmd_port_t (4369) and ephemeral ports (the CLI
 * tools' range, distribution port + 10000); selinux-policy rabbitmq.te and corenetwork.te.in,
 * c9s branch. With the default ports every label is already there; a port moved in
 * `cluster.ports` gets the same type.
 */
export function rabbitmqSelinuxPorts(inv: Inventory): PortLabel[] {
  const p = inv.cluster.ports;
  return [
    { type: 'amqp_port_t', port: brokerPort(inv) },
    { type: 'amqp_port_t', port: p.rabbitmqManagement },
    ...(tlsEnabled(inv) ? [{ type: 'amqp_port_t', port: p.rabbitmqManagementTls }] : []),
    { type: 'rabbitmq_port_t', port: p.rabbitmqDist },
    { type: 'epmd_port_t', port: p.epmd },
  ];
}

/** A check that the local node runs (`rabbitmq-diagnostics -q check_running`, exit 0 = running). Boots an Erlang VM: 1-2 s. */
export const checkRunning = sh`rabbitmq-diagnostics -q check_running`;

/** The local node's management API (the `rabbitmq_management` plugin every node enables), `path` appended: `http://127.0.0.1:15672/api/...`. */
export function managementUrl(inv: Inventory, path: string): string {
  return `http://127.0.0.1:${inv.cluster.ports.rabbitmqManagement}${path}`;
}

/** The cluster's administrator (from the definitions file), for the management API. */
function adminAuth(secrets: ClusterSecrets): BasicAuth {
  return { user: ADMIN_USER, password: secrets.rabbitmqAdmin };
}

/**
 * The enabled_plugins file: the management plugin, and in a monitored cluster rabbitmq_prometheus
 * (https://www.rabbitmq.com/docs/prometheus: metrics on port 15692, `/metrics` aggregated,
 * `/metrics/detailed` per queue). A change restarts the node through {@link restartIfStaleHandler}.
 */
export function enabledPlugins(inv: Inventory): string {
  return monitored(inv) ? '[rabbitmq_management,rabbitmq_prometheus].\n' : '[rabbitmq_management].\n';
}

/**
 * Handler: restart rabbitmq-server only if the running node started before rabbitmq.conf or
 * enabled_plugins last changed (both are read only at boot). On a fresh host the files are written
 * before the package starts the node, so the first run restarts nothing. Before the restart, refuse
 * if the node is critical to a quorum queue's majority
 * (`rabbitmq-queues check_if_node_is_quorum_critical`); after it, wait until the node runs again, so
 * a step with `serial: 1` restarts one node at a time.
 */
export function restartIfStaleHandler(inv: Inventory): Handler {
  // With TLS, its certificate and key copies too: the listener reads them at boot.
  const tls = rabbitmqTls(inv);
  const files = [RABBITMQ_PATHS.conf, RABBITMQ_PATHS.plugins, ...(tls ? [tls.cert, tls.key] : [])];
  return {
    id: `restart:${RABBITMQ_SERVICE}`,
    name: `restart ${RABBITMQ_SERVICE} (if it started before its config changed)`,
    ops: [
      exec(
        sh`ts=$(systemctl show -p ActiveEnterTimestamp --value ${RABBITMQ_SERVICE}); started=$(date -d "$ts" +%s 2>/dev/null || echo 0); newest=$(stat -c %Y ${files} | sort -n | tail -1); if [ "$newest" -ge "$started" ]; then if systemctl -q is-active ${RABBITMQ_SERVICE}; then rabbitmq-queues -q check_if_node_is_quorum_critical || exit 1; fi; systemctl restart ${RABBITMQ_SERVICE}; fi`,
        300,
      ),
      exec(waitLoop({ cmd: checkRunning, timeoutSec: 120, intervalSec: 2 }), 130),
    ],
  };
}

/**
 * Handler: import the definitions file into the running cluster. Definitions are imported at every
 * node boot; a changed file is applied without a restart by `rabbitmqctl import_definitions`, which
 * is cluster-wide and idempotent (it creates or updates, never deletes).
 */
export function importDefinitionsHandler(): Handler {
  return {
    id: 'rabbitmq:import-definitions',
    name: 'rabbitmqctl import_definitions',
    ops: [
      exec(waitLoop({ cmd: checkRunning, timeoutSec: 120, intervalSec: 2 }), 130),
      exec(sh`rabbitmqctl -q import_definitions ${RABBITMQ_PATHS.definitions}`, 120),
    ],
  };
}

/**
 * Tasks on a `rabbitmq` host, in order. Everything the node reads at its first start (user, cookie,
 * rabbitmq.conf, enabled_plugins, definitions) is in place before the package is installed:
 * Debian's postinst starts the node at once, and keeps an existing cookie unless it looks
 * Erlang-generated (exactly 20 upper-case letters; ours is 32 of [A-Z0-9]). The user and group are
 * created as the postinst would (system user, home /var/lib/rabbitmq); the postinst then chowns
 * /etc/rabbitmq and enabled_plugins to rabbitmq, which is the ownership declared here, so a re-run
 * does not fight it. Run this with `serial: 1`: nodes start one after another, so each fresh node
 * finds a running peer in the classic-config list and joins it (3.10 has no peer-discovery lock for
 * classic config, and randomized startup delay is a no-op, so parallel first starts could form
 * separate clusters).
 *
 * Queues: Airflow 2.9's constraints pin Celery 5.2, which cannot use quorum queues (it needs global
 * QoS, refused on them; Celery >= 5.5 can), and classic mirrored queues are deprecated in 3.10 and
 * removed in 4.0. So no mirroring policy is declared: Celery's classic queues live on one node.
 * What a node loss costs: the queues on that node (by default the node a worker first declared them
 * on) are unavailable until it returns; their persistent messages are kept on its disk, not lost,
 * unless the disk is lost; Celery reconnects to another broker of `broker_url` and the tasks queued
 * there wait. Airflow's scheduler re-queues tasks stuck in `queued` (`task_queued_timeout`).
 */
export function rabbitmqNodeTasks(inv: Inventory, secrets: ClusterSecrets, host: Host, facts: HostFacts, tls?: TlsMaterial): Task[] {
  const restart = restartIfStaleHandler(inv);
  const erlangPin = erlangAptPin(inv, facts.family);
  const shell = facts.family === 'debian' ? '/usr/sbin/nologin' : '/sbin/nologin';
  const tasks: Task[] = [
    group({ name: 'rabbitmq', system: true }),
    user({ name: 'rabbitmq', system: true, home: RABBITMQ_PATHS.home, shell, primaryGroup: 'rabbitmq' }),
    directory({ path: RABBITMQ_PATHS.home, mode: '0755', owner: 'rabbitmq', group: 'rabbitmq' }),
    // The cookie is never changed under a running cluster by a restart: nodes with different
    // cookies cannot talk, so changing it is a stop-all/start-all operation, not a rolling one.
    file({ path: RABBITMQ_PATHS.cookie, content: secrets.erlangCookie.reveal(), mode: '0400', owner: 'rabbitmq', group: 'rabbitmq', label: `file ${RABBITMQ_PATHS.cookie} (secret)`, holdsSecrets: true }),
    directory({ path: '/etc/rabbitmq', mode: '0755', owner: 'rabbitmq', group: 'rabbitmq' }),
    // cluster.tls: RabbitMQ's copy of the host key for its AMQPS listener (the certificate and CA are the TLS step's).
    ...tlsServiceKeyTask(inv, host, tls, 'rabbitmq', [restart]),
    template({ path: RABBITMQ_PATHS.conf, template: 'rabbitmq/rabbitmq.conf.njk', vars: rabbitmqConfVars(inv), notify: [restart] }),
    file({ path: RABBITMQ_PATHS.plugins, content: enabledPlugins(inv), owner: 'rabbitmq', group: 'rabbitmq', notify: [restart] }),
    template({
      path: RABBITMQ_PATHS.definitions,
      template: 'rabbitmq/definitions.json.njk',
      vars: definitionsVars(inv, secrets),
      mode: '0640',
      owner: 'root',
      group: 'rabbitmq',
      notify: [importDefinitionsHandler()],
      // Password hashes: an old one in a diff could be attacked offline.
      holdsSecrets: true,
    }),
    ...rabbitmqRepoTasks(inv, facts),
    ...(erlangPin ? [erlangPin] : []),
    ...(facts.family === 'rhel' ? [selinuxPorts(rabbitmqSelinuxPorts(inv))] : []),
    packages(rabbitmqPackages(inv, facts.family)),
    service({ name: RABBITMQ_SERVICE, enabled: true, state: 'started' }),
    // The node runs: its management listener answers `/` (the UI page, no credentials: they may be
    // changing in this very run). The plugin starts after the rabbit application and stops with it
    // (https://www.rabbitmq.com/docs/management), so this is check_running without booting an
    // Erlang VM for the CLI on every run; a `serial: 1` step still starts one node after another.
    waitFor({ http: managementUrl(inv, '/'), timeoutSec: 180, intervalSec: 2 }),
  ];
  // Definitions import creates users but never deletes one: the default `guest` (created on the
  // first boot of a fresh cluster) is deleted here, once per cluster, from the first node only
  // (parallel deletes from every node would race and fail with "no such user").
  if (rabbitmqHosts(inv)[0]?.name === host.name) {
    tasks.push(
      command({
        name: 'delete the guest user',
        cmd: sh`rabbitmqctl -q delete_user guest`,
        unless: guestAbsentCheck(inv, secrets),
        timeoutSec: 60,
      }),
    );
  }
  return tasks;
}

/**
 * Exit 0 when the user `guest` is absent. Asks the management API first (`GET /api/users/guest`:
 * 404 absent, 200 present; https://www.rabbitmq.com/docs/http-api-reference); on any other answer
 * (node down, the admin's password not imported yet) asks `rabbitmqctl list_users`, and when that
 * fails too says "present", so the delete runs and fails loudly.
 */
export function guestAbsentCheck(inv: Inventory, secrets: ClusterSecrets) {
  const get = httpGet(managementUrl(inv, '/api/users/guest'), { auth: adminAuth(secrets) });
  return sh`code=$(${get} | head -n 1 | cut -d ' ' -f 2); case "$code" in 404) exit 0;; 200) exit 1;; esac; users=$(rabbitmqctl -q list_users) && ! printf '%s\\n' "$users" | cut -f1 | grep -qx guest`;
}

/**
 * The gate: the management API of one node (`GET /api/nodes`, one HTTP request, no Erlang VM
 * booted; https://www.rabbitmq.com/docs/http-api-reference) lists every rabbitmq host's node with
 * `running: true`. Exit 0 = all running; otherwise stderr names the missing nodes, or the HTTP
 * status when the API gave no node list.
 */
export function clusterRunningCheck(inv: Inventory, secrets: ClusterSecrets) {
  const want = rabbitmqHosts(inv).map(nodeName);
  const script = [
    'import json, sys',
    'head, _, body = sys.stdin.read().partition("\\r\\n\\r\\n")',
    'status = (head.split(" ") + ["", ""])[1] if head.startswith("HTTP/") else "no answer"',
    'if status != "200": sys.exit("management API: " + status)',
    'running = {n.get("name") for n in json.loads(body) if n.get("running")}',
    'missing = [n for n in sys.argv[1:] if n not in running]',
    'sys.exit("not running: " + " ".join(missing) if missing else 0)',
  ].join('\n');
  return sh`${httpGet(managementUrl(inv, '/api/nodes?columns=name,running'), { auth: adminAuth(secrets) })} | python3 -c ${script} ${want}`;
}
