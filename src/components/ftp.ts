/**
 * The FTP server on the host of role ftp: vsftpd with TLS required for logins and data, one local
 * account (cluster.ftp.user, password = the secret `ftpUser`) locked in its home by chroot, no
 * anonymous access, and a passive port range the base firewall opens to the cluster network only.
 * Desired state only: the runner executes the tasks.
 */
import { createHmac } from 'node:crypto';
import { sh, type Cmd } from '../core/cmd.js';
import { sha512Crypt } from '../core/crypt.js';
import { Secret } from '../core/secret.js';
import type { OsFamily } from '../facts/host.js';
import type { ClusterSecrets } from '../inventory/secrets.js';
import type { Host, Inventory } from '../inventory/schema.js';
import { command } from '../tasks/command.js';
import { directory, file } from '../tasks/file.js';
import { packages } from '../tasks/package.js';
import { restartHandler, service } from '../tasks/systemd.js';
import { password, user } from '../tasks/system.js';
import { renderTemplate, template } from '../tasks/template.js';
import type { Task } from '../tasks/task.js';

/** The TLS certificate and key vsftpd presents, generated on the host once (self-signed). */
export const FTP_CERT = '/etc/ssl/certs/airflow-ha-vsftpd.pem';
export const FTP_KEY = '/etc/ssl/private/airflow-ha-vsftpd.key';
/** The accounts allowed to log in (userlist_deny=NO: everyone else is refused before the password). */
export const FTP_USERLIST = '/etc/airflow-ha/vsftpd.users';
/** vsftpd's PAM service: password check and account expiry only (Debian's `vsftpd` PAM file also
 *  requires a shell listed in /etc/shells, which a nologin account has not). */
export const FTP_PAM_SERVICE = 'vsftpd-airflow-ha';

/** vsftpd.conf's path: Debian /etc/vsftpd.conf, RHEL /etc/vsftpd/vsftpd.conf. */
export function vsftpdConfPath(family: OsFamily): string {
  return family === 'debian' ? '/etc/vsftpd.conf' : '/etc/vsftpd/vsftpd.conf';
}

/** The variables of templates/ftp/vsftpd.conf.njk. */
export function vsftpdVars(inv: Inventory, family: OsFamily): Record<string, unknown> {
  return {
    cluster: inv.cluster.name,
    userlist: FTP_USERLIST,
    pam_service: FTP_PAM_SERVICE,
    // The empty, root-owned folder vsftpd chroots its unprivileged helper into (Debian's package
    // ships /var/run/vsftpd/empty, RHEL's /usr/share/empty).
    secure_chroot_dir: family === 'debian' ? '/var/run/vsftpd/empty' : '/usr/share/empty',
    pasv_min: inv.cluster.ports.ftpPassiveMin,
    pasv_max: inv.cluster.ports.ftpPassiveMax,
    cert: FTP_CERT,
    key: FTP_KEY,
  };
}

/** vsftpd.conf as the ftp host gets it (pure). */
export function vsftpdConfig(inv: Inventory, family: OsFamily): string {
  return renderTemplate('ftp/vsftpd.conf.njk', vsftpdVars(inv, family));
}

/**
 * The /etc/shadow hash of the FTP password: SHA-512 crypt with a salt derived from the secret and
 * the user name (HMAC-SHA256), so the same secret always gives the same hash and a re-run compares
 * equal; the salt is still unique per cluster secret.
 */
export function ftpPasswordHash(secrets: ClusterSecrets, userName: string): Secret {
  const pw = secrets.ftpUser.reveal();
  const salt = createHmac('sha256', pw).update(`airflow-ha ftp ${userName}`).digest('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, 16);
  return new Secret(sha512Crypt(pw, salt));
}

/**
 * vsftpd has no config test mode (vsftpd(8) has no -t), so the new file is checked by starting
 * vsftpd on it with `-olisten=NO -olisten_ipv6=NO` after the file (command-line options given after
 * the file override it): vsftpd parses the file, loads the TLS certificate and key, and only then
 * stops with `500 OOPS: ... must be started from inetd`, because its stdin is no socket. Reaching
 * that message is the pass; any other (`unrecognised variable`, `bad bool value`, `SSL: cannot load
 * RSA certificate`, ...) refuses the file. vsftpd writes its messages to fd 0 (the control
 * connection), so fd 0 is a temp file opened read-write. Checked on vsftpd 3.0.3 (Debian 12).
 */
export function vsftpdCheck(tmp: string): Cmd {
  return sh`t=$(mktemp) || exit 1; timeout 5 vsftpd ${tmp} -olisten=NO -olisten_ipv6=NO 0<>"$t" >/dev/null 2>&1; out=$(cat "$t"); rm -f "$t"; case "$out" in *'must be started from inetd'*) exit 0;; esac; echo "vsftpd refuses this config: $out" >&2; exit 1`;
}

/**
 * Tasks of the ftp host: vsftpd and openssl; the account with a nologin shell, its password set by
 * hash through `chpasswd -e` on stdin; its home, the chroot, root-owned and read-only
 * (vsftpd refuses a writable chroot), with `upload/` writable by the account; a self-signed
 * certificate made on the host once (`creates`: never replaced by a re-run); the PAM service and
 * the user list; the config checked before it replaces the old one; the service running.
 */
export function ftpTasks(inv: Inventory, host: Host, secrets: ClusterSecrets, family: OsFamily): Task[] {
  const { user: name, root } = inv.cluster.ftp;
  const restart = restartHandler('vsftpd');
  return [
    packages({ names: ['vsftpd', 'openssl'] }),
    user({ name, home: root, shell: '/usr/sbin/nologin' }),
    password({ user: name, hash: ftpPasswordHash(secrets, name) }),
    directory({ path: root, mode: '0755', owner: 'root', group: 'root' }),
    directory({ path: `${root}/upload`, mode: '0750', owner: name, group: name }),
    command({
      name: `TLS certificate ${FTP_CERT}`,
      // Key and certificate are made under temp names and renamed, so a failed run leaves neither.
      cmd: sh`umask 077 && openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj ${`/CN=${host.name}`} -keyout ${`${FTP_KEY}.new`} -out ${`${FTP_CERT}.new`} 2>/dev/null && chmod 0644 ${`${FTP_CERT}.new`} && mv ${`${FTP_KEY}.new`} ${FTP_KEY} && mv ${`${FTP_CERT}.new`} ${FTP_CERT}`,
      creates: FTP_CERT,
      notify: [restart],
    }),
    directory({ path: '/etc/airflow-ha' }),
    file({ path: FTP_USERLIST, content: `${name}\n`, notify: [restart] }),
    file({
      path: `/etc/pam.d/${FTP_PAM_SERVICE}`,
      content: '# Managed by airflow-ha: FTP logins check the password and the account, nothing else.\nauth    required pam_unix.so\naccount required pam_unix.so\nsession required pam_unix.so\n',
    }),
    template({
      path: vsftpdConfPath(family),
      template: 'ftp/vsftpd.conf.njk',
      vars: vsftpdVars(inv, family),
      validate: vsftpdCheck,
      notify: [restart],
    }),
    service({ name: 'vsftpd', enabled: true, state: 'started' }),
  ];
}
