import { raw } from '../core/cmd.js';
import type { Fact } from './fact.js';

/** OS families airflow-ha supports: Debian 12 (apt) and Rocky Linux / RHEL 9 (dnf). */
export type OsFamily = 'debian' | 'rhel';

/** What the runner learns about each host when it connects (one round trip). */
export interface HostFacts {
  /** `ID` of /etc/os-release, e.g. `debian`, `rocky`. */
  osId: string;
  /** `VERSION_ID`, e.g. `12`, `9.4`. */
  osVersion: string;
  family: OsFamily;
  /** The host's current hostname (`uname -n`). */
  hostname: string;
  /** Runs in a container (`systemd-detect-virt --container`, man systemd-detect-virt): no clock to set. */
  container: boolean;
}

/** What /etc/os-release says (man os-release(5)); `family` is undefined for an OS of neither family. */
export interface OsRelease {
  osId: string;
  /** `ID_LIKE`, e.g. `rhel centos fedora`. */
  like: string;
  osVersion: string;
  family?: OsFamily;
  hostname: string;
  container: boolean;
}

const HOST_CMD = raw(
  `. /etc/os-release 2>/dev/null; printf '%s\\n%s\\n%s\\n%s\\n%s\\n' "$ID" "$ID_LIKE" "$VERSION_ID" "$(uname -n)" "$(systemd-detect-virt --container 2>/dev/null || true)"`,
);

/** Parses the output of the host facts command; never throws. */
function parseOsRelease(stdout: string): OsRelease {
  const [id = '', like = '', version = '', hostname = '', virt = ''] = stdout.split('\n');
  const words = `${id} ${like}`.split(/\s+/);
  const family: OsFamily | undefined = words.some((w) => w === 'debian' || w === 'ubuntu')
    ? 'debian'
    : words.some((w) => ['rhel', 'fedora', 'centos', 'rocky', 'almalinux'].includes(w))
      ? 'rhel'
      : undefined;
  return { osId: id, like, osVersion: version, ...(family ? { family } : {}), hostname, container: virt !== '' && virt !== 'none' };
}

/**
 * The same command as {@link hostFacts} (same key: gathered once), parsed without refusing any OS,
 * for the preflight's OS rule (src/preflight/rules.ts), which names an unsupported OS with its fix.
 */
export const osReleaseFact: Fact<OsRelease> = { key: 'host', cmd: HOST_CMD, parse: parseOsRelease };

/**
 * The host facts, read from /etc/os-release (man os-release(5)): ID, ID_LIKE, VERSION_ID.
 * Throws if the OS is neither Debian-like nor RHEL-like.
 */
export const hostFacts: Fact<HostFacts> = {
  key: 'host',
  cmd: HOST_CMD,
  parse(stdout) {
    const { osId, like, osVersion, family, hostname, container } = parseOsRelease(stdout);
    if (!family) throw new Error(`unsupported OS "${osId}" (ID_LIKE "${like}"): airflow-ha supports Debian 12 and Rocky/RHEL 9`);
    return { osId, osVersion, family, hostname, container };
  },
};
