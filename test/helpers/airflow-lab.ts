/**
 * Helpers of the Airflow end-to-end tests (test/e2e/airflow*.test.ts): the stand-in's wheelhouse,
 * Python run on a lab host, HTTP GETs from a host, unit start times, the stand-in's migration count
 * and a Celery task sent through the stand-in's app. Every command goes through `onHost`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { quote } from '../../src/core/cmd.js';
import { onHost, ROOT } from './lab.js';

/** As the airflow user with AIRFLOW_HOME (what the units run): prefix of a command on a host. */
export const AS_AIRFLOW = 'cd /opt/airflow && runuser -u airflow -- env AIRFLOW_HOME=/opt/airflow';

/** Builds the stand-in of test/standin/ as Airflow `version` (its mode: 2.x or 3.x) into `dir`. */
export async function buildStandin(version: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  execFileSync('python3', [path.join(ROOT, 'test', 'standin', 'build_wheel.py'), version, dir], { stdio: 'pipe' });
}

/**
 * The inventory's `cluster.airflow` for a lab that installs the stand-in from `wheelhouse`: the
 * wheelhouse install source and the Debian packages the stand-in imports (test/standin/README.md).
 */
export function standinAirflow(wheelhouse: string, workerConcurrency: number) {
  return {
    install: { source: 'wheelhouse', wheelhouse },
    workerConcurrency,
    osPackages: ['python3-psycopg2', 'python3-celery', 'python3-sqlalchemy'],
  };
}

/** `python3 -c SCRIPT ARGS...` on a host (or `prefix` instead of python3); the script is shipped base64-encoded. */
export function py(inventoryFile: string, host: string, script: string, args: string[] = [], prefix = 'python3') {
  const b64 = Buffer.from(script).toString('base64');
  return onHost(inventoryFile, host, `f=$(mktemp) && echo ${b64} | base64 -d > "$f" && chmod 644 "$f" && ${prefix} "$f" ${args.map(quote).join(' ')}; rc=$?; rm -f "$f"; exit $rc`);
}

/** GET URL [BASIC-AUTH]: prints "STATUS BODY"; a refused or dropped connection fails (timeout 10 s). */
export const GET = `
import base64, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[2].encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
`;

/** GET `url` from `host` with optional basic auth. Fails the test when the request gets no HTTP answer. */
export async function get(inventoryFile: string, host: string, url: string, auth?: string): Promise<{ status: number; body: string }> {
  const r = await py(inventoryFile, host, GET, auth ? [url, auth] : [url]);
  assert.equal(r.code, 0, r.stderr);
  const sp = r.stdout.indexOf(' ');
  return { status: Number(r.stdout.slice(0, sp)), body: r.stdout.slice(sp + 1).trim() };
}

/** The monotonic start times of `units` on `host`, one string (a restart changes it). */
export async function unitStarts(inventoryFile: string, host: string, units: readonly string[]): Promise<string> {
  const r = await onHost(inventoryFile, host, `systemctl show -p ExecMainStartTimestampMonotonic --value ${units.join(' ')} | tr "\\n" " "`);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

/** How many `db migrate` runs the stand-in recorded, asked with psql from `host` through `vip`:5000. */
export async function standinMigrations(inventoryFile: string, host: string, vip: string, password: string): Promise<number> {
  const r = await onHost(inventoryFile, host, `PGPASSWORD='${password}' psql -XqAt -h ${vip} -p 5000 -U airflow -d airflow -c "select count(*) from standin_migrations"`);
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

/**
 * Sends the stand-in's `standin.echo` task on `queue` from `host` (its Celery app, the broker and
 * result backend of airflow.cfg) and returns what the worker that ran it says.
 */
export async function echoTask(inventoryFile: string, host: string, queue: string): Promise<{ code: number; result?: { hostname: string; tag: string; queue: string }; stderr: string }> {
  const send = `
import json, sys
from airflow.providers.celery.executors.celery_executor import app
r = app.send_task("standin.echo", args=[sys.argv[1]], queue=sys.argv[1])
print(json.dumps(r.get(timeout=60)))
`;
  const r = await py(inventoryFile, host, send, [queue], `${AS_AIRFLOW} /opt/airflow/venv/bin/python`);
  return { code: r.code, stderr: r.stderr, ...(r.code === 0 ? { result: JSON.parse(r.stdout.trim()) as { hostname: string; tag: string; queue: string } } : {}) };
}
