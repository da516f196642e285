/**
 * The operator's ssh_config as airflow-ha reads it: parsing with line numbers, Host matching by
 * inventory name and address, first value wins, the precedence inventory host > inventory ssh >
 * ssh_config > defaults, ProxyJump chains, tokens, `none`, and errors naming file and line.
 * Fixtures: test/fixtures/ssh_config/.
 */
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../src/core/errors.js';
import { parseInventory } from '../../src/inventory/load.js';
import type { Inventory } from '../../src/inventory/schema.js';
import { readSshConfig, resolveSshHosts, DEFAULT_CONNECT_TIMEOUT_SEC, type LocalFacts } from '../../src/cli/transport.js';
import { hostPatternsMatch, lookupSshConfig, parseProxyJump, parseSshConfig } from '../../src/ssh/ssh-config.js';
import type { SshHostConfig } from '../../src/ssh/pool.js';
import { ROOT } from '../helpers/lab.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'ssh_config');
const local: LocalFacts = { home: '/home/op', user: 'op', uid: 1000, hostname: 'ws1.corp.example', cwd: '/work/site' };

async function fixture(name: string) {
  const file = path.join(FIXTURES, name);
  const text = await readFile(file, 'utf8');
  return { file, text, lineOf: (needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1 };
}

/** Five hosts on 10.1.1.0/24 (h1..h5 at .11-.15), with `top` and per-host `ssh` lines spliced in. */
function inventory(top = '', perHost: Record<string, string> = {}): Inventory {
  const host = (n: number, roles: string) => {
    const name = `h${n}`;
    return `  - { name: ${name}, address: 10.1.1.${10 + n}, roles: [${roles}]${perHost[name] ? `, ssh: ${perHost[name]}` : ''} }`;
  };
  const yaml = `cluster:
  name: t
  network: 10.1.1.0/24
  vips: [{ name: db-vip, address: 10.1.1.200, role: haproxy, routerId: 51 }]
${top ? `ssh: ${top}\n` : ''}hosts:
${host(1, 'etcd, postgresql, rabbitmq')}
${host(2, 'etcd, postgresql, rabbitmq')}
${host(3, 'etcd, postgresql, rabbitmq')}
${host(4, 'haproxy')}
${host(5, 'haproxy')}
`;
  return parseInventory(yaml, '/work/site/t.yaml').inventory;
}

async function resolved(conf: string | null, inv: Inventory = inventory(), env: NodeJS.ProcessEnv = { SSH_AUTH_SOCK: '/run/agent.sock' }) {
  const sshConfig = conf === null ? null : parseSshConfig((await fixture(conf)).text, path.join(FIXTURES, conf));
  return resolveSshHosts({ inventory: inv, dir: '/work/site', sshConfig, env, local });
}

const get = (hosts: Map<string, SshHostConfig>, name: string) => {
  const h = hosts.get(name);
  assert.ok(h, `no settings for ${name}`);
  return h;
};

/** The hops from a host to the first jump, as `name user@address:port`, the host first. */
const path_ = (h: SshHostConfig | undefined): string[] => (h ? [`${h.name} ${h.user}@${h.address}:${h.port}`, ...path_(h.jump)] : []);

describe('ssh_config parsing', () => {
  it('gives each directive its line; a Match block is skipped with a note, Include too', async () => {
    const f = await fixture('operator.conf');
    const cfg = parseSshConfig(`${f.text}Include ~/.ssh/config.d/*\n`, f.file);
    assert.deepEqual(cfg.notes, [
      `${f.file} line ${f.lineOf('Match host')}: Match blocks are not read by airflow-ha (skipped: "Match host 10.1.1.14 exec echo never run")`,
      `${f.file} line ${f.text.split('\n').length}: Include is not followed by airflow-ha ("Include ~/.ssh/config.d/*")`,
    ]);
    const h1 = lookupSshConfig(cfg, ['h1', '10.1.1.11']);
    assert.deepEqual(h1.user, { value: 'alice', line: f.lineOf('User alice') });
    assert.deepEqual(h1.port, { value: 2222, line: f.lineOf('Port 2222') });
    assert.deepEqual(
      h1.identityFiles.map((v) => v.value),
      ['~/.ssh/%n-%h-%r-%p', '~/.ssh/id_ed25519', '~/.ssh/id_rsa'],
    );
    assert.deepEqual(h1.proxyJump?.value, [{ host: 'bastion-outer' }, { host: 'bastion-inner' }]);
    assert.equal(h1.connectTimeout?.value, 7, 'from the address block: both names are looked up');
  });

  it('matches Host patterns against the name or the address; a negated one on either excludes', () => {
    assert.equal(hostPatternsMatch(['10.1.1.*'], ['h1', '10.1.1.11']), true);
    assert.equal(hostPatternsMatch(['H1'], ['h1', '10.1.1.11']), true, 'case-insensitive');
    assert.equal(hostPatternsMatch(['*', '!h1'], ['h1', '10.1.1.11']), false);
    assert.equal(hostPatternsMatch(['*', '!10.1.1.11'], ['h1', '10.1.1.11']), false);
    assert.equal(hostPatternsMatch(['h?'], ['h12']), false, '? is exactly one character');
  });

  it('reads ProxyJump as ssh does: user@host:port, ssh:// URIs, none', () => {
    assert.deepEqual(parseProxyJump('ops@a:2200,ssh://b,[fd00::1]:22'), [{ user: 'ops', host: 'a', port: 2200 }, { host: 'b' }, { host: 'fd00::1', port: 22 }]);
    assert.equal(parseProxyJump('none'), 'none');
    assert.throws(() => parseProxyJump('a:99999'), /port 99999/);
  });

  it('a parse error names the file and the line', async () => {
    for (const [name, line, reason] of [
      ['bad-port.conf', 5, /Port "70000" is not a port number/],
      ['bad-quote.conf', 3, /Unexpected line break/],
      ['bad-jump.conf', 2, /ProxyJump "ops@" is not \[user@\]host\[:port\]/],
    ] as const) {
      const f = await fixture(name);
      assert.throws(
        () => parseSshConfig(f.text, f.file),
        (e: unknown) => e instanceof InputError && e.message.startsWith(`${f.file} line ${line}: `) && reason.test(e.message),
        name,
      );
    }
  });
});

describe('SSH settings of the inventory hosts', () => {
  it('without ssh_config: the built-in defaults', async () => {
    const { hosts, notes } = await resolved(null);
    assert.deepEqual(get(hosts, 'h1'), { name: 'h1', address: '10.1.1.11', port: 22, user: 'root', connectTimeoutSec: DEFAULT_CONNECT_TIMEOUT_SEC });
    assert.deepEqual(notes, []);
  });

  it('ssh_config by name, then by address, first value in file order; Match not applied', async () => {
    const { hosts } = await resolved('operator.conf');
    const h1 = get(hosts, 'h1');
    assert.equal(h1.user, 'alice');
    assert.equal(h1.port, 2222);
    assert.equal(h1.connectTimeoutSec, 7);
    assert.equal(h1.identityFile, '/home/op/.ssh/h1-10.1.1.11-alice-2222', '%n %h %r %p and ~ of the first IdentityFile');
    assert.equal(h1.agent, '/run/agent.sock', 'IdentityAgent SSH_AUTH_SOCK');
    const h4 = get(hosts, 'h4');
    assert.equal(h4.address, 'h4.mgmt.example', 'HostName');
    assert.equal(h4.user, 'deploy', 'the 10.1.1.* block comes first; "User matched" of the Match block is not used');
    assert.deepEqual(path_(h4), ['h4 deploy@h4.mgmt.example:22', 'jump:bastion-inner ops@10.9.0.5:22'], 'the first ProxyJump (10.1.1.*) wins over "none" below it');
    const h5 = get(hosts, 'h5');
    assert.equal(h5.user, 'fallback', '!10.1.1.15 excludes h5 from the address block');
    assert.equal(h5.jump, undefined);
    assert.equal(h5.identityFile, '/home/op/.ssh/id_ed25519');
  });

  it('a ProxyJump chain a,b: the host through b, b through a, a with its own settings', async () => {
    const { hosts } = await resolved('operator.conf');
    const h1 = get(hosts, 'h1');
    assert.deepEqual(path_(h1), ['h1 alice@10.1.1.11:2222', 'jump:bastion-inner ops@10.9.0.5:22', 'jump:bastion-outer gate@203.0.113.10:2201']);
    const inner = h1.jump!;
    assert.equal(inner.agent, undefined, 'IdentityAgent none');
    assert.equal(inner.identityFile, '/home/op/.ssh/id_ed25519');
    assert.equal(inner.jump?.identityFile, '/home/op/.ssh/outer_gate_2201', '%r %p of the jump host itself');
    // A host whose ProxyJump names only bastion-inner reaches it directly (its own config has none).
    assert.deepEqual(path_(get(hosts, 'h2')), ['h2 deploy@10.1.1.12:22', 'jump:bastion-inner ops@10.9.0.5:22']);
  });

  it('precedence: inventory host > inventory ssh > ssh_config > defaults; jump hosts outside the inventory keep their ssh_config', async () => {
    const inv = inventory('{ user: admin, connectTimeoutSec: 3 }', { h1: '{ port: 2022, identityFile: keys/h1 }', h5: '{ jump: h2 }' });
    const { hosts } = await resolved('operator.conf', inv);
    const h1 = get(hosts, 'h1');
    assert.equal(h1.port, 2022, 'the host\'s own ssh');
    assert.equal(h1.user, 'admin', 'the inventory\'s top-level ssh over ssh_config');
    assert.equal(h1.connectTimeoutSec, 3);
    assert.equal(h1.identityFile, '/work/site/keys/h1', 'relative to the inventory file');
    assert.equal(h1.jump?.user, 'ops', 'bastion-inner: ssh_config User over the inventory\'s top-level user');
    assert.equal(h1.jump?.jump?.connectTimeoutSec, 3, 'what ssh_config does not say about a jump host comes from the inventory\'s top-level ssh');
    // The inventory's jump wins over ssh_config's, and an inventory host as jump is that host.
    assert.deepEqual(path_(get(hosts, 'h5')), ['h5 admin@10.1.1.15:22', 'h2 admin@10.1.1.12:22', 'jump:bastion-inner ops@10.9.0.5:22']);
  });

  it('a top-level inventory jump to a host reaches that host directly, even with a ProxyJump for it', async () => {
    const { hosts } = await resolved('operator.conf', inventory('{ jump: h2 }'));
    assert.equal(get(hosts, 'h2').jump, undefined);
    assert.equal(get(hosts, 'h3').jump?.name, 'h2');
  });

  it('tokens %u %L %C %i %d %% and ${VAR} in IdentityFile, ~ and %r in IdentityAgent; an unknown token names the line', async () => {
    const { hosts } = await resolved('tokens.conf', inventory(), { KEYDIR: '/keys' });
    const hash = createHash('sha1').update('ws1.corp.example10.1.1.1222root').digest('hex');
    assert.equal(get(hosts, 'h2').identityFile, `/keys/op@ws1/${hash}-1000-/home/op-%`);
    assert.equal(get(hosts, 'h2').agent, '/home/op/agent-root.sock');
    const f = await fixture('tokens.conf');
    const inv3 = parseInventory('cluster:\n  name: t\n  network: 10.1.1.0/24\n  vips: []\nhosts:\n  - { name: h9, address: 10.1.1.19, roles: [etcd] }\n', '/work/site/t.yaml');
    assert.throws(
      () => resolveSshHosts({ inventory: inv3.inventory, dir: '/work/site', sshConfig: parseSshConfig(f.text, f.file), env: {}, local }),
      (e: unknown) => e instanceof InputError && e.message.startsWith(`${f.file} line ${f.lineOf('%Z')}: IdentityFile: unknown token %Z`),
    );
  });

  it('a ProxyJump loop is refused, naming the ProxyJump lines', async () => {
    const f = await fixture('loop.conf');
    await assert.rejects(
      resolved('loop.conf'),
      (e: unknown) => e instanceof InputError && /jump hosts form a loop: h1 \(ProxyJump j1, .*loop\.conf line 2\) -> jump:j1 \(ProxyJump j2, .*line 4\) -> jump:j2 \(ProxyJump j1, .*line 6\) -> jump:j1$/.test(e.message),
    );
    assert.equal(f.lineOf('ProxyJump j2'), 4);
  });

  it('a ProxyCommand that would be used is named in a note (airflow-ha does not run it)', async () => {
    const cfg = parseSshConfig('Host h3\n  ProxyCommand ssh -W %h:%p gw\n', '/home/op/.ssh/config');
    const { notes } = resolveSshHosts({ inventory: inventory(), dir: '/work/site', sshConfig: cfg, env: {}, local });
    assert.deepEqual(notes, ['/home/op/.ssh/config line 2: ProxyCommand is not used by airflow-ha (host h3 is connected to directly; ProxyJump is read)']);
  });
});

describe('which ssh_config file is read', () => {
  it('-F none reads none; the default is ~/.ssh/config when it exists; a given file must exist', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'ssh-config-home-'));
    try {
      assert.equal(await readSshConfig({ sshConfig: 'none' }, home, home), null);
      assert.equal(await readSshConfig({}, home, home), null, 'no ~/.ssh/config: none');
      await mkdir(path.join(home, '.ssh'));
      await writeFile(path.join(home, '.ssh', 'config'), 'Host h1\n  User me\n');
      const dflt = await readSshConfig({}, home, home);
      assert.equal(dflt?.file, path.join(home, '.ssh', 'config'));
      assert.equal(dflt && lookupSshConfig(dflt, ['h1']).user?.value, 'me');
      assert.equal(await readSshConfig({ sshConfig: 'none' }, home, home), null, 'none even when ~/.ssh/config exists');
      const given = await readSshConfig({ sshConfig: path.join(FIXTURES, 'operator.conf') }, home, home);
      assert.equal(given?.file, path.join(FIXTURES, 'operator.conf'));
      await assert.rejects(readSshConfig({ sshConfig: 'missing.conf' }, home, home), (e: unknown) => e instanceof InputError && /cannot read the SSH client configuration .*missing\.conf .*ENOENT/.test(e.message));
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
