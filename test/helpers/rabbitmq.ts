/** RabbitMQ's management HTTP API from inside a lab host (its python3 has no AMQP client). */
import assert from 'node:assert/strict';
import { quote } from '../../src/core/cmd.js';

/** A python3 script (urllib only) calling the management API: USER PW METHOD PATH [JSON BODY]. */
const API = `
import base64, json, sys, urllib.request, urllib.error
user, pw, method, path = sys.argv[1:5]
body = sys.argv[5].encode() if len(sys.argv) > 5 else None
req = urllib.request.Request("http://127.0.0.1:15672/api" + path, data=body, method=method)
req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode())
req.add_header("Content-Type", "application/json")
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
`;

/** Runs a shell command as root on a host: exit code, stdout, stderr. */
export type OnHost = (host: string, cmd: string) => Promise<{ code: number; stdout: string; stderr: string }>;

/** Calls METHOD PATH of the management API on `host` as `user`; returns the HTTP status and body. */
export async function rabbitApi(
  on: OnHost,
  host: string,
  user: string,
  pw: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  const b64 = Buffer.from(API).toString('base64');
  const args = [user, pw, method, path, ...(body === undefined ? [] : [JSON.stringify(body)])].map(quote);
  const r = await on(host, `echo ${b64} | base64 -d > /tmp/ahapi.py && python3 /tmp/ahapi.py ${args.join(' ')}`);
  assert.equal(r.code, 0, r.stderr);
  const sp = r.stdout.indexOf(' ');
  return { status: Number(r.stdout.slice(0, sp)), body: r.stdout.slice(sp + 1).trim() };
}
