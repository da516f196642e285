import { sh } from '../core/cmd.js';
import { exec } from '../core/op.js';
import type { Fact } from '../facts/fact.js';
import { file } from './file.js';
import type { Handler, Task, TaskPlan } from './task.js';

/** A systemd service's state as `systemctl is-enabled` and `is-active` print it (man systemctl). */
export interface ServiceState {
  /** `enabled`, `disabled`, `static`, `masked`, `not-found`, ... */
  enabled: string;
  /** `active`, `inactive`, `failed`, `activating`, ... */
  active: string;
}

/** Fact: enabled and active state of `name` in one command. */
export function serviceFact(name: string): Fact<ServiceState> {
  return {
    key: `service:${name}`,
    cmd: sh`e=$(systemctl is-enabled ${name} 2>/dev/null); a=$(systemctl is-active ${name} 2>/dev/null); printf '%s\\n%s\\n' "\${e:-not-found}" "\${a:-unknown}"`,
    parse(stdout) {
      const [enabled = 'not-found', active = 'unknown'] = stdout.split('\n');
      return { enabled, active };
    },
  };
}

/**
 * Handler: restart `name` (runs once at the end of the step, on hosts where it was notified). It
 * clears the unit's failed state first (`systemctl reset-failed`, which also resets its start rate
 * counter): a package that starts its service at install with a default config that cannot work
 * leaves it failing and restarting until systemd's start rate limit (StartLimitBurst=5 within
 * StartLimitIntervalSec=10 s by default, systemd.unit(5)), after which systemd refuses the restart
 * that brings the real config ("start of the service was attempted too often"). Seen with Debian's
 * prometheus-postgres-exporter; done for every unit, so no notification of a unit depends on
 * which handler of the same id (`restart:<unit>`) was notified first.
 */
export function restartHandler(name: string): Handler {
  return { id: `restart:${name}`, name: `restart ${name}`, ops: [exec(sh`systemctl reset-failed ${name} 2>/dev/null; systemctl restart ${name}`)] };
}

/** Handler: reload `name` (for services that re-read their config on reload, e.g. haproxy). */
export function reloadHandler(name: string): Handler {
  return { id: `reload:${name}`, name: `reload ${name}`, ops: [exec(sh`systemctl reload ${name}`)] };
}

/** Desired state of a service. */
export interface ServiceSpec {
  name: string;
  enabled?: boolean;
  state?: 'started' | 'stopped';
}

/** Task: a systemd service enabled/disabled and started/stopped. */
export function service(spec: ServiceSpec): Task {
  const fact = serviceFact(spec.name);
  const enabled = spec.enabled ?? true;
  const state = spec.state ?? 'started';
  return {
    name: `service ${spec.name} ${enabled ? 'enabled' : 'disabled'}, ${state}`,
    facts: () => [fact],
    plan(facts): TaskPlan {
      const cur = facts.get(fact);
      const ops = [];
      const changes: string[] = [];
      const isEnabled = cur.enabled === 'enabled' || cur.enabled === 'static' || cur.enabled === 'alias';
      if (enabled && !isEnabled) {
        ops.push(exec(sh`systemctl enable ${spec.name}`));
        changes.push(`enable ${spec.name} (was ${cur.enabled})`);
      } else if (!enabled && cur.enabled === 'enabled') {
        ops.push(exec(sh`systemctl disable ${spec.name}`));
        changes.push(`disable ${spec.name}`);
      }
      const isActive = cur.active === 'active' || cur.active === 'reloading' || cur.active === 'activating';
      if (state === 'started' && !isActive) {
        ops.push(exec(sh`systemctl start ${spec.name}`));
        changes.push(`start ${spec.name} (was ${cur.active})`);
      } else if (state === 'stopped' && cur.active !== 'inactive' && cur.active !== 'failed' && cur.active !== 'unknown') {
        ops.push(exec(sh`systemctl stop ${spec.name}`));
        changes.push(`stop ${spec.name}`);
      }
      return { changed: ops.length > 0, ops, changes, notify: [] };
    },
  };
}

/** Desired systemd unit file (or drop-in) content. */
export interface UnitSpec {
  /** Unit name, e.g. `airflow-scheduler.service`. */
  name: string;
  content: string;
  /** For a drop-in: its file name under `/etc/systemd/system/NAME.d/`. */
  dropIn?: string;
  /** Restart these units when the file changes (default: the unit itself, unless a drop-in of a unit that runs elsewhere). */
  restart?: readonly string[];
}

/**
 * Task: a unit file under /etc/systemd/system (or a drop-in), followed by `systemctl daemon-reload`
 * when it changes, and a restart handler for the unit.
 */
export function unit(spec: UnitSpec): Task {
  const path = spec.dropIn
    ? `/etc/systemd/system/${spec.name}.d/${spec.dropIn}`
    : `/etc/systemd/system/${spec.name}`;
  const inner = file({
    path,
    content: spec.content,
    notify: (spec.restart ?? [spec.name]).map((n) => restartHandler(n)),
    label: `unit ${path}`,
  });
  return {
    name: inner.name,
    facts: inner.facts,
    files: inner.files,
    plan(facts, host) {
      const p = inner.plan(facts, host);
      if (!p.changed) return p;
      const mkdir = spec.dropIn ? [exec(sh`mkdir -p ${`/etc/systemd/system/${spec.name}.d`}`)] : [];
      return { ...p, ops: [...mkdir, ...p.ops, exec(sh`systemctl daemon-reload`)] };
    },
  };
}

/** Wraps a task so that its handlers fire only if `unitName` was active when facts were read. */
export function notifyIfActive(task: Task, unitName: string): Task {
  const f = serviceFact(unitName);
  return {
    name: task.name,
    facts: (h) => [...task.facts(h), f],
    ...(task.files ? { files: task.files.bind(task) } : {}),
    plan(facts, h): TaskPlan {
      const p = task.plan(facts, h);
      return facts.get(f).active === 'active' ? p : { ...p, notify: [] };
    },
  };
}
