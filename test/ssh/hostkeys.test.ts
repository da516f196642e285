import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkHostKey,
  describeKey,
  entryMatchesHost,
  fingerprintSha256,
  formatKey,
  formatKnownHostsLine,
  hashHostName,
  hostKeyAlgorithmsFor,
  keyTypeOf,
  knownHostsName,
  knownKeyTypes,
  matchPatternList,
  matchWildcard,
  parseHashedHostName,
  parseKnownHosts,
} from '../../src/ssh/hostkeys.js';
import { sudoRefusal } from '../../src/ssh/pool.js';

// Vectors made with OpenSSH's ssh-keygen (keys generated for this test; `-lf` fingerprints; `-H` hashing).
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIDLI6d6aa41yeyvfoBkOCpLNKTLFgMOZ89lnNdZCiPBX';
const ED_FP = 'SHA256:OxUtoQDYJGjEzQx9Kx8u4lvEnPINv+5TotG8gHRAQx8';
const RSA =
  'AAAAB3NzaC1yc2EAAAADAQABAAABAQCbknOkMO7uM3BUiv8g3cBLtEuGEeUHD6n3OBEe+7Xkdu7QojyX+H8VzbitNiKb8GV6zJckXmWXAZF8jnjBG1t/G1fsCFzP/12cq1V+ll5+hFHcgRn4Tolkx/ZMuyQUH+Ftf3RgnmZdXL93xchr3XVT53ckxALDZJHy6soHCNDJE/Oi/d4DO1jZOd9phVDzrBXgAhKGU0olvkN7r6lCj7ktH9HbpWenZ6G5GJqmPGrSpFkzAWzK3i/TMaejP8z/qan/4PihTXrXQxqik58KyRLz9SJrovFcUPcrbyanKi1MesHM6YrCB+RWolIi5rEDcf4et4fV+ASLNM2yRM46PM5r';
const RSA_FP = 'SHA256:3u2N6mXEhc2SGaCwj1dloUG+hyuzktadHCgMVGjJftA';
const EC =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBF73EwenvGe1efKzJ9aQEuIH4NCmJp1Fqufnny0qryv82LLw9hLDCXrv/d52sCSmo8CRmf+HJFWyy2t2ouiPN7ZxZuPPbRKuccwGwfig7Ws8e5kYjF+vQagek7jdp49ktA==';
const EC_FP = 'SHA256:uTv0Tzx9rPeqddzOkS9B4tcgJ9IQ9sHnrVNsc8Je/Sg';
/** `ssh-keygen -H` of `[10.0.0.5]:2222 ssh-ed25519 ED` and `10.0.0.6 ecdsa-sha2-nistp384 EC`. */
const HASHED_5 = '|1|zZtzYgjUxAK/BqYagfcXM57+gvo=|wmdlb+3i8T8ppSolfUpqCy3Z9VE=';
const HASHED_6 = '|1|DyKB1qpVRNTehAQvRD45WQQi4oI=|5Jec2CFZ7xfpclVO6H80SlvUuEY=';

const ed = Buffer.from(ED, 'base64');
const rsa = Buffer.from(RSA, 'base64');
const ec = Buffer.from(EC, 'base64');

describe('parseKnownHosts', () => {
  it('skips blank lines and comments, reads markers, patterns, comments and line numbers', () => {
    const text = [
      '# a comment',
      '',
      `web1,10.0.0.1 ssh-ed25519 ${ED} root@web1 key`,
      `   [10.0.0.2]:2222\tssh-rsa ${RSA}`,
      `@revoked * ssh-rsa ${RSA}`,
      `@cert-authority *.example.com ecdsa-sha2-nistp384 ${EC}`,
      `${HASHED_5} ssh-ed25519 ${ED}`,
      '',
    ].join('\n');
    const { entries, errors } = parseKnownHosts(text);
    assert.deepEqual(errors, []);
    assert.equal(entries.length, 5);
    const [a, b, c, d, e] = entries;
    assert.deepEqual(
      { line: a?.line, marker: a?.marker, patterns: a?.patterns, type: a?.keyType, comment: a?.comment },
      { line: 3, marker: null, patterns: ['web1', '10.0.0.1'], type: 'ssh-ed25519', comment: 'root@web1 key' },
    );
    assert.ok(a?.key.equals(ed));
    assert.deepEqual([b?.line, b?.patterns, b?.keyType, b?.comment], [4, ['[10.0.0.2]:2222'], 'ssh-rsa', '']);
    assert.deepEqual([c?.marker, c?.patterns], ['revoked', ['*']]);
    assert.equal(d?.marker, 'cert-authority');
    assert.equal(e?.line, 7);
    assert.deepEqual(e?.patterns, []);
    assert.equal(e?.hashed?.salt.length, 20);
  });

  it('reports unusable lines with their numbers and keeps the rest', () => {
    const text = [
      `@bogus host ssh-ed25519 ${ED}`,
      'host ssh-ed25519',
      'host ssh-ed25519 not*base64',
      `host ssh-rsa ${ED}`, // type does not match the blob
      'host 2048 65537 1234567', // RSA1
      `|1|short|hash ssh-ed25519 ${ED}`,
      `ok ssh-ed25519 ${ED}`,
      'host ssh-ed25519 AAAA', // truncated blob
    ].join('\r\n');
    const { entries, errors } = parseKnownHosts(text);
    assert.deepEqual(
      entries.map((e) => e.line),
      [7],
    );
    assert.deepEqual(
      errors.map((e) => e.line),
      [1, 2, 3, 4, 5, 6, 8],
    );
    assert.match(errors[0]?.message ?? '', /unknown marker @bogus/);
    assert.match(errors[3]?.message ?? '', /does not match/);
  });
});

describe('host names and patterns', () => {
  it('names a host as OpenSSH does: bare on port 22, [address]:port otherwise', () => {
    assert.equal(knownHostsName('10.0.0.5', 22), '10.0.0.5');
    assert.equal(knownHostsName('10.0.0.5', 2222), '[10.0.0.5]:2222');
    assert.equal(knownHostsName('Web1.Example', 22), 'web1.example');
  });

  it('matches wildcards (* and ?), brackets literally, case-insensitively', () => {
    assert.ok(matchWildcard('web1.example.com', '*.example.com'));
    assert.ok(matchWildcard('web1', 'web?'));
    assert.ok(!matchWildcard('web10', 'web?'));
    assert.ok(matchWildcard('[10.0.0.5]:2222', '[10.0.0.*]:2222'));
    assert.ok(!matchWildcard('[10.0.0.5]:2222', '[10.0.0.*]:22'));
    assert.ok(!matchWildcard('10.0.0.5', '[10.0.0.5]:22'));
    assert.ok(matchWildcard('WEB1', 'web1'));
    assert.ok(matchWildcard('', '*'));
    assert.ok(matchWildcard('abcabd', '*ab?'));
    assert.ok(!matchWildcard('abc', 'a*d'));
  });

  it('a matching negated pattern rejects the whole list', () => {
    assert.ok(matchPatternList('10.0.0.5', ['10.0.0.*']));
    assert.ok(!matchPatternList('10.0.0.5', ['10.0.0.*', '!10.0.0.5']));
    assert.ok(matchPatternList('10.0.0.6', ['10.0.0.*', '!10.0.0.5']));
    assert.ok(!matchPatternList('10.0.0.6', ['!10.0.0.5'])); // negation alone is not a match
  });

  it('matches hashed names made by ssh-keygen -H, and hashes the same way', () => {
    const h5 = parseHashedHostName(HASHED_5);
    const h6 = parseHashedHostName(HASHED_6);
    assert.ok(h5 && h6);
    const { entries } = parseKnownHosts(`${HASHED_5} ssh-ed25519 ${ED}\n${HASHED_6} ecdsa-sha2-nistp384 ${EC}\n`);
    assert.ok(entryMatchesHost(entries[0]!, '[10.0.0.5]:2222'));
    assert.ok(!entryMatchesHost(entries[0]!, '10.0.0.5'));
    assert.ok(!entryMatchesHost(entries[0]!, '[10.0.0.5]:22'));
    assert.ok(entryMatchesHost(entries[1]!, '10.0.0.6'));
    assert.equal(hashHostName('[10.0.0.5]:2222', h5.salt), HASHED_5);
    assert.equal(hashHostName('10.0.0.6', h6.salt), HASHED_6);
    assert.equal(parseHashedHostName('|2|abc|def'), null);
  });
});

describe('checkHostKey', () => {
  const text = [
    `[10.0.0.5]:2222 ssh-ed25519 ${ED}`,
    `10.0.0.7,10.0.0.8 ssh-rsa ${RSA}`,
    `10.0.0.7 ssh-ed25519 ${ED}`,
    `@revoked 10.0.0.9 ecdsa-sha2-nistp384 ${EC}`,
    `@cert-authority 10.0.0.10 ssh-ed25519 ${ED}`,
  ].join('\n');
  const { entries } = parseKnownHosts(text);

  it('known: the offered key is listed for the host', () => {
    const r = checkHostKey(entries, '[10.0.0.5]:2222', ed);
    assert.equal(r.status, 'known');
    assert.equal(r.status === 'known' && r.entry.line, 1);
    assert.equal(checkHostKey(entries, '10.0.0.7', rsa).status, 'known');
    assert.equal(checkHostKey(entries, '10.0.0.7', ed).status, 'known');
  });

  it('unknown: nothing listed for the host (other port, other address, CA lines ignored)', () => {
    assert.equal(checkHostKey(entries, '10.0.0.5', ed).status, 'unknown');
    assert.equal(checkHostKey(entries, '10.0.0.99', ed).status, 'unknown');
    assert.equal(checkHostKey(entries, '10.0.0.10', ed).status, 'unknown');
    assert.equal(checkHostKey([], '10.0.0.5', ed).status, 'unknown');
  });

  it('changed: keys are listed for the host but not this one (same or other type)', () => {
    const r = checkHostKey(entries, '[10.0.0.5]:2222', ec);
    assert.equal(r.status, 'changed');
    assert.deepEqual(r.status === 'changed' && r.known.map((e) => e.line), [1]);
    const r8 = checkHostKey(entries, '10.0.0.8', ed);
    assert.deepEqual(r8.status === 'changed' && r8.known.map((e) => e.line), [2]);
  });

  it('revoked: an @revoked line has this key for the host', () => {
    const r = checkHostKey(entries, '10.0.0.9', ec);
    assert.equal(r.status, 'revoked');
    assert.equal(r.status === 'revoked' && r.entry.line, 4);
  });

  it('lists known key types and the host-key algorithms to prefer', () => {
    assert.deepEqual(knownKeyTypes(entries, '10.0.0.7'), ['ssh-rsa', 'ssh-ed25519']);
    assert.deepEqual(hostKeyAlgorithmsFor(['ssh-rsa', 'ssh-ed25519']), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519']);
    assert.deepEqual(hostKeyAlgorithmsFor(['ecdsa-sha2-nistp384', 'ssh-dss']), ['ecdsa-sha2-nistp384']);
  });
});

describe('keys', () => {
  it('fingerprints and sizes as ssh-keygen -lf prints them', () => {
    assert.equal(fingerprintSha256(ed), ED_FP);
    assert.equal(fingerprintSha256(rsa), RSA_FP);
    assert.equal(fingerprintSha256(ec), EC_FP);
    assert.equal(formatKey(ed), `256 ${ED_FP} (ED25519)`);
    assert.equal(formatKey(rsa), `2048 ${RSA_FP} (RSA)`);
    assert.equal(formatKey(ec), `384 ${EC_FP} (ECDSA)`);
    assert.equal(describeKey(rsa).bits, 2048);
  });

  it('reads the key type from a blob and refuses garbage', () => {
    assert.equal(keyTypeOf(ed), 'ssh-ed25519');
    assert.equal(keyTypeOf(Buffer.from([0, 0, 0, 9, 1])), undefined);
    assert.equal(keyTypeOf(Buffer.alloc(0)), undefined);
  });

  it('formats a line that parses back to the same key', () => {
    const line = formatKnownHostsLine('[127.0.0.1]:2200', ec, 'airflow-ha:web1');
    assert.equal(line, `[127.0.0.1]:2200 ecdsa-sha2-nistp384 ${EC} airflow-ha:web1`);
    const { entries } = parseKnownHosts(line);
    assert.equal(checkHostKey(entries, '[127.0.0.1]:2200', ec).status, 'known');
    assert.throws(() => formatKnownHostsLine('h', ec, 'a\nb'));
  });
});

describe('sudoRefusal', () => {
  it('recognises sudo asking for a password or a terminal, and users not allowed', () => {
    assert.equal(sudoRefusal('sudo: a password is required\n')?.kind, 'password');
    assert.equal(sudoRefusal('sudo: a terminal is required to read the password; either use the -S option')?.kind, 'password');
    assert.equal(sudoRefusal('deploy is not in the sudoers file.  This incident will be reported.\n')?.kind, 'not-allowed');
    assert.equal(sudoRefusal('psql: error: a password is required\n'), null);
    assert.equal(sudoRefusal(''), null);
  });
});
