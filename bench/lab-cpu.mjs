// CPU time of each container of a lab, from its cgroup (cgroups(7), cgroup v2 `cpu.stat`: the
// `usage_usec` line, microseconds of CPU used by every process of the group and its children).
// Each lab container runs in the cgroup `airflow-ha-lab/<prefix>-<host>` of the cgroup2 hierarchy
// (src/lab/cgroup.ts), so this counts the lab's hosts only: not the CLI, not other work on this
// machine.
// Usage: node bench/lab-cpu.mjs INVENTORY [--by-unit]   prints {"<host>": <usage_usec>, ...}, or
// with --by-unit {"<host> <unit>": ...}: each service of the container's systemd
// (payload/system.slice/*.service), its login sessions (payload/user.slice: what SSH sessions run)
// and the rest of the host (`<host> other`). Exits 1 with the reason when the machine has no such
// cgroups (e.g. a systemd-booted machine, where nspawn gets a scope unit instead).
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

const [file, flag] = process.argv.slice(2);
const byUnit = flag === '--by-unit';
if (!file) {
  console.error('usage: node bench/lab-cpu.mjs INVENTORY');
  process.exit(2);
}
const inv = parse(readFileSync(file, 'utf8'));
const prefix = inv?.lab?.prefix;
if (typeof prefix !== 'string') {
  console.error(`${file}: no lab.prefix`);
  process.exit(1);
}
// proc(5) /proc/mounts: device, mount point, type, options.
const mount = readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .map((l) => l.split(' '))
  .find((f) => f[2] === 'cgroup2')?.[1];
if (!mount) {
  console.error('no cgroup2 hierarchy mounted');
  process.exit(1);
}
const group = join(mount, 'airflow-ha-lab');
let names;
try {
  names = readdirSync(group).filter((n) => n.startsWith(`${prefix}-`));
} catch (e) {
  console.error(`${group}: ${e.message}`);
  process.exit(1);
}
if (names.length === 0) {
  console.error(`${group}: no container of prefix ${prefix}`);
  process.exit(1);
}
/** usage_usec of the cgroup at `dir`, or 0 when it is gone (a unit that stopped). */
function usage(dir) {
  try {
    return Number(/^usage_usec (\d+)$/m.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
const out = {};
for (const n of names) {
  const host = n.slice(prefix.length + 1);
  const total = usage(join(group, n));
  if (!byUnit) {
    out[host] = total;
    continue;
  }
  const payload = join(group, n, 'payload');
  let counted = 0;
  let units = [];
  try {
    units = readdirSync(join(payload, 'system.slice')).filter((u) => u.endsWith('.service'));
  } catch {}
  for (const u of units) {
    const v = usage(join(payload, 'system.slice', u));
    out[`${host} ${u.replace(/\.service$/, '')}`] = v;
    counted += v;
  }
  const sessions = usage(join(payload, 'user.slice'));
  out[`${host} sessions`] = sessions;
  out[`${host} other`] = total - counted - sessions;
}
console.log(JSON.stringify(out));
