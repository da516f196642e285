/**
 * Where this machine's apt gets Debian from, and the lab's own apt-cacher-ng serving the hosts.
 * Sources: sources.list(5) (one-line and deb822 formats), apt-cacher-ng's /etc/apt-cacher-ng/acng.conf
 * (option names, Remap-* syntax) and its manual (/usr/share/doc/apt-cacher-ng).
 */
import { request } from 'node:http';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type IsOurs, livePid, signal, spawnDetached, tail, waitGone } from './local.js';

/** One `deb` entry of apt's sources: base URI (ending in `/`), suites, components. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
}

/** Parses deb822 `.sources` text (sources.list(5)); entries with `Enabled: no` or without `deb` are left out. */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let key = '';
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (m?.[1] !== undefined) {
        key = m[1].toLowerCase();
        fields.set(key, (m[2] ?? '').trim());
      } else if (/^\s/.test(line) && key) {
        fields.set(key, `${fields.get(key) ?? ''} ${line.trim()}`);
      }
    }
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb') || /^(no|false)$/i.test(fields.get('enabled') ?? '')) continue;
    for (const uri of words('uris')) out.push({ uri: withSlash(uri), suites: words('suites'), components: words('components') });
  }
  return out;
}

/** Parses one-line `sources.list` text: `deb [options] URI SUITE COMPONENT...`. */
export function parseSourcesList(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (type === 'deb' && uri && suite) out.push({ uri: withSlash(uri), suites: [suite], components });
  }
  return out;
}

function withSlash(uri: string): string {
  return uri.endsWith('/') ? uri : `${uri}/`;
}

/** The `deb` entries of this machine's apt: /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}. */
export async function machineAptSources(): Promise<AptSource[]> {
  const read = (f: string) => readFile(f, 'utf8').catch(() => '');
  const out = parseSourcesList(await read('/etc/apt/sources.list'));
  const dir = '/etc/apt/sources.list.d';
  for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) {
    if (f.endsWith('.sources')) out.push(...parseDeb822(await read(join(dir, f))));
    else if (f.endsWith('.list')) out.push(...parseSourcesList(await read(join(dir, f))));
  }
  return out;
}

/** The Debian 12 mirrors this machine uses (URIs ending in `/`): the archive and, if any, the security archive. */
export interface Mirrors {
  debian: string;
  security?: string;
  components: string[];
}

/** Picks the bookworm mirrors out of SOURCES. Throws when this machine's apt has no bookworm entry. */
export function pickMirrors(sources: readonly AptSource[]): Mirrors {
  const main = sources.find((s) => s.suites.includes('bookworm'));
  if (!main) {
    throw new Error('this machine\'s apt has no "bookworm" source (/etc/apt/sources.list{,.d}); the lab needs a Debian 12 mirror');
  }
  const security = sources.find((s) => s.suites.includes('bookworm-security'));
  const components = main.components.length > 0 ? main.components : ['main'];
  return security ? { debian: main.uri, security: security.uri, components } : { debian: main.uri, components };
}

/** The URI the hosts write in their sources: plain http, so apt-cacher-ng can cache it (it fetches https upstream itself). */
export function hostUri(uri: string): string {
  return uri.replace(/^https:\/\//, 'http://');
}

/** `deb.debian.org/debian/` from `http://deb.debian.org/debian/`. */
function hostPath(uri: string): string {
  return uri.replace(/^[a-z]+:\/\//, '');
}

/** The deb822 sources file the lab hosts get: the machine's mirrors for bookworm, -updates and -security. */
export function hostSourcesFile(m: Mirrors): string {
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  const stanza = (uri: string, suites: string) =>
    `Types: deb\nURIs: ${hostUri(uri)}\nSuites: ${suites}\nComponents: ${m.components.join(' ')}\nSigned-By: ${keyring}\n`;
  const parts = [stanza(m.debian, 'bookworm bookworm-updates')];
  if (m.security) parts.push(stanza(m.security, 'bookworm-security'));
  return `# Written by airflow-ha lab: this machine's mirrors, fetched through the lab's apt-cacher-ng.\n${parts.join('\n')}`;
}

/** Where one lab's apt-cacher-ng keeps things: runtime (config, logs, PID) and the package cache. */
export interface AptProxyPaths {
  /** Config dir, logs, socket and PID file; deleted with the lab. */
  runDir: string;
  /** Downloaded packages; kept across `lab down` so the next `lab up` is fast. */
  cacheDir: string;
}

export const APT_PROXY_PORT = 3142;

const confDir = (p: AptProxyPaths) => join(p.runDir, 'conf');
const pidFile = (p: AptProxyPaths) => join(p.runDir, 'apt-cacher-ng.pid');
const outLog = (p: AptProxyPaths) => join(p.runDir, 'apt-cacher-ng.out');

function isAcng(p: AptProxyPaths): IsOurs {
  const conf = confDir(p);
  return (argv) => (argv[0] ?? '').endsWith('apt-cacher-ng') && argv.includes(conf);
}

/** acng.conf for this lab (options as in the packaged /etc/apt-cacher-ng/acng.conf). */
function acngConf(p: AptProxyPaths, address: string, m: Mirrors): string {
  const secBackend = m.security ? hostPath(m.security).replace(/\/$/, '') : 'deb.debian.org/debian-security';
  return [
    '# Written by airflow-ha lab: this lab\'s own apt-cacher-ng (the system one in /etc/apt-cacher-ng is left alone).',
    `CacheDir: ${p.cacheDir}`,
    `LogDir: ${join(p.runDir, 'log')}`,
    'SupportDir: /usr/lib/apt-cacher-ng',
    `SocketPath: ${join(p.runDir, 'socket')}`,
    `BindAddress: ${address}`,
    `Port: ${APT_PROXY_PORT}`,
    'ForeGround: 1',
    'Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian',
    `Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security /debian-security ; ${secBackend}`,
    'ReportPage: acng-report.html',
    'ExThreshold: 4',
    '',
  ].join('\n');
}

/** The PID of this lab's apt-cacher-ng when it runs (recorded by {@link ensureAptProxy}). */
export function aptProxyPid(p: AptProxyPaths): Promise<number | undefined> {
  return livePid(pidFile(p), isAcng(p));
}

/**
 * Makes this lab's apt-cacher-ng run on ADDRESS:3142 (its own config under `runDir`, cache under
 * `cacheDir`, PID recorded in `runDir/apt-cacher-ng.pid`) and checks that it serves bookworm's
 * Release file from the machine's mirror. A proxy already running is kept. Throws with the tail of
 * its log when it does not start or serve within 60 s.
 */
export async function ensureAptProxy(p: AptProxyPaths, address: string, m: Mirrors, log: (line: string) => void): Promise<void> {
  if (!(await aptProxyPid(p))) {
    const conf = confDir(p);
    await mkdir(conf, { recursive: true });
    await mkdir(join(p.runDir, 'log'), { recursive: true });
    await mkdir(p.cacheDir, { recursive: true });
    await writeFile(join(conf, 'acng.conf'), acngConf(p, address, m));
    // apt-cacher-ng answers 503 for Debian URLs until backends_debian names a mirror.
    await writeFile(join(conf, 'backends_debian'), `${m.debian}\n`);
    const pid = await spawnDetached('/usr/sbin/apt-cacher-ng', ['-c', conf], outLog(p), pidFile(p));
    log(`apt proxy: apt-cacher-ng started on ${address}:${APT_PROXY_PORT} (PID ${pid})`);
  }
  const url = `${hostUri(m.debian)}dists/bookworm/Release`;
  const deadline = Date.now() + 60_000;
  let last = '';
  while (Date.now() < deadline) {
    if (!(await aptProxyPid(p))) {
      throw new Error(`apt-cacher-ng exited; its output (${outLog(p)}):\n${await tail(outLog(p))}`);
    }
    try {
      const { status, body } = await proxyGet(address, APT_PROXY_PORT, url, 20_000);
      if (status === 200 && /^Codename: bookworm$/m.test(body)) return;
      last = `HTTP ${status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(500);
  }
  throw new Error(
    `the lab's apt proxy ${address}:${APT_PROXY_PORT} does not serve ${url} (${last}); its output (${outLog(p)}):\n${await tail(outLog(p))}`,
  );
}

/** Stops this lab's apt-cacher-ng (only the PID it recorded: SIGTERM, then SIGKILL after 10 s). */
export async function stopAptProxy(p: AptProxyPaths): Promise<void> {
  const pid = await aptProxyPid(p);
  if (pid !== undefined) {
    signal(pid, 'SIGTERM');
    if (!(await waitGone(pid, isAcng(p), 10_000))) signal(pid, 'SIGKILL');
    await waitGone(pid, isAcng(p), 5_000);
  }
  await rm(pidFile(p), { force: true });
}

/** GET URL through the HTTP proxy at HOST:PORT (an absolute-form request, RFC 9112 3.2.2). */
export function proxyGet(host: string, port: number, url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host, port, path: url, headers: { Host: new URL(url).host }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 1 << 20) body += c;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      res.on('error', fail);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', fail);
    req.end();
  });
}
