/**
 * IPv4 arithmetic and the lab's Linux bridge (ip-link(8), ip-address(8)). The bridge is a plain L2
 * segment with one address of this machine on it: no NAT, and net.ipv4.ip_forward is never changed.
 */
import { execa } from 'execa';

/** An IPv4 network: its first address as an unsigned 32-bit number and its prefix length (0-32). */
export interface Cidr {
  base: number;
  prefix: number;
}

/** `a.b.c.d` -> unsigned 32-bit number. Throws on anything else. */
export function parseIpv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new Error(`not an IPv4 address: ${s}`);
  }
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** `a.b.c.d/n` -> network (host bits cleared) and prefix length. */
export function parseCidr(s: string): Cidr {
  const [addr, len] = s.split('/');
  const prefix = Number(len);
  if (addr === undefined || !/^\d{1,2}$/.test(len ?? '') || prefix > 32) throw new Error(`not an IPv4 CIDR: ${s}`);
  return { base: (parseIpv4(addr) & mask(prefix)) >>> 0, prefix };
}

/** True when ADDR is a usable host address of NET (inside it, not its network or broadcast address). */
export function isHostOf(addr: string, net: Cidr): boolean {
  const a = parseIpv4(addr);
  if (((a & mask(net.prefix)) >>> 0) !== net.base) return false;
  if (net.prefix >= 31) return true;
  const broadcast = (net.base | (~mask(net.prefix) >>> 0)) >>> 0;
  return a !== net.base && a !== broadcast;
}

/** True when the two networks share any address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const m = mask(Math.min(a.prefix, b.prefix));
  return ((a.base & m) >>> 0) === ((b.base & m) >>> 0);
}

interface IpAddrJson {
  ifname: string;
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/** The IPv4 addresses of this machine's interfaces (`ip -j -4 addr show`). */
async function ipv4Addresses(): Promise<{ ifname: string; local: string; prefixlen: number }[]> {
  const { stdout } = await execa('ip', ['-j', '-4', 'addr', 'show']);
  return (JSON.parse(stdout) as IpAddrJson[]).flatMap((i) =>
    (i.addr_info ?? [])
      .filter((a) => a.family === 'inet' && a.local !== undefined && a.prefixlen !== undefined)
      .map((a) => ({ ifname: i.ifname, local: a.local as string, prefixlen: a.prefixlen as number })),
  );
}

/** The kind of link NAME (`bridge`, `veth`, ... or '' for a plain device), undefined when there is none. */
export async function linkKind(name: string): Promise<string | undefined> {
  const r = await execa('ip', ['-j', '-d', 'link', 'show', 'dev', name], { reject: false });
  if (r.exitCode !== 0) return undefined;
  const [link] = JSON.parse(r.stdout) as { linkinfo?: { info_kind?: string } }[];
  return link?.linkinfo?.info_kind ?? '';
}

/**
 * Makes bridge NAME exist, up, with ADDRESS/prefix of NET.
 * - `ours`: the lab created this bridge earlier (its state says so); it is repaired as needed.
 * - A bridge that exists but is not ours is used only when it already has ADDRESS; it is never changed.
 * - Refuses a network that overlaps an address on any other interface of this machine.
 * Returns true when this call created the bridge (call `beforeCreate` first so the caller can record
 * ownership before anything exists).
 */
export async function ensureBridge(
  name: string,
  address: string,
  net: Cidr,
  ours: boolean,
  beforeCreate: () => Promise<void>,
): Promise<boolean> {
  const addrs = await ipv4Addresses();
  const clash = addrs.find((a) => a.ifname !== name && overlaps(parseCidr(`${a.local}/${a.prefixlen}`), net));
  if (clash) {
    throw new Error(
      `the lab network overlaps ${clash.local}/${clash.prefixlen} on interface ${clash.ifname} of this machine; choose another cluster.network`,
    );
  }
  const own = addrs.filter((a) => a.ifname === name);
  const cidr = `${address}/${net.prefix}`;
  const kind = await linkKind(name);
  if (kind !== undefined && kind !== 'bridge') throw new Error(`interface ${name} exists and is not a bridge (kind: ${kind || 'device'})`);
  if (kind === 'bridge' && !ours) {
    if (!own.some((a) => a.local === address && a.prefixlen === net.prefix)) {
      throw new Error(`bridge ${name} exists, was not made by this lab and lacks ${cidr}; choose another lab.bridge`);
    }
    return false;
  }
  let created = false;
  if (kind === undefined) {
    await beforeCreate();
    await execa('ip', ['link', 'add', 'name', name, 'type', 'bridge']);
    created = true;
  }
  if (!own.some((a) => a.local === address && a.prefixlen === net.prefix)) {
    await execa('ip', ['addr', 'add', cidr, 'dev', name]);
  }
  await execa('ip', ['link', 'set', 'dev', name, 'up']);
  return created;
}

/** Deletes bridge NAME when it exists (its ports, the containers' veths, go with their containers). */
export async function deleteBridge(name: string): Promise<void> {
  if ((await linkKind(name)) === 'bridge') await execa('ip', ['link', 'del', 'dev', name]);
}
