/**
 * SSH key pairs airflow-ha generates for the cluster and keeps in the inventory's state folder, like
 * secrets.yaml: made once, reused on every run, the private key mode 0600 (a key that others can read
 * is refused, not fixed behind the operator's back).
 */
import { constants } from 'node:fs';
import { chmod, link, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import { InputError } from '../core/errors.js';
import { Secret } from '../core/secret.js';
import type { SshKeypair } from '../run/playbook.js';

/**
 * Loads `<stateDir>/<name>` (OpenSSH private key) and `<name>.pub`, generating an Ed25519 pair first
 * when the private key does not exist (ssh2's generateKeyPairSync: OpenSSH formats, no passphrase).
 * A new private key is created exclusively (O_EXCL via a hard link), so two runs never mix two pairs.
 * @throws InputError (exit 2) when the private key is readable by group or others, or a file is not
 *   an OpenSSH key.
 */
export async function loadOrCreateKeypair(stateDir: string, name: string, comment: string): Promise<SshKeypair & { created: boolean }> {
  const keyFile = path.join(stateDir, name);
  const pubFile = `${keyFile}.pub`;
  let created = false;
  if (!(await exists(keyFile))) {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const tmp = `${keyFile}.${process.pid}.tmp`;
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      await fh.writeFile(pair.private);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o600);
    try {
      await link(tmp, keyFile);
      created = true;
      await writeFile(pubFile, `${pair.public.trim()}\n`, { mode: 0o644 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  }
  const mode = (await stat(keyFile)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new InputError(`private key ${keyFile} has mode ${mode.toString(8).padStart(4, '0')}: it must not be readable by group or others; fix it with \`chmod 600 ${keyFile}\``);
  }
  const privateText = await readFile(keyFile, 'utf8');
  const parsed = ssh2.utils.parseKey(privateText);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new InputError(`${keyFile} is not an OpenSSH private key`);
  // The public line is derived from the private key, so a lost or edited .pub cannot diverge from it.
  const publicKey = `${parsed.type} ${parsed.getPublicSSH().toString('base64')} ${comment}`;
  if (!(await exists(pubFile))) await writeFile(pubFile, `${publicKey}\n`, { mode: 0o644 });
  return { privateKey: new Secret(privateText), publicKey, created };
}

const exists = (file: string): Promise<boolean> => stat(file).then(
  () => true,
  () => false,
);
