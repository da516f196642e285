/**
 * IPv4 arithmetic for inventory validation: no I/O, no dependency.
 * Addresses are handled as unsigned 32-bit integers.
 */

/** A parsed IPv4 network (`10.222.83.0/24`). */
export interface Ipv4Network {
  /** The text as written. */
  readonly text: string;
  /** The address part as written (may have host bits set, e.g. `10.0.0.5/24`). */
  readonly base: number;
  readonly prefix: number;
  /** The network address (host bits cleared). */
  readonly network: number;
  /** The broadcast address (host bits set). */
  readonly broadcast: number;
  readonly mask: number;
}

const OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;

/** Parses a dotted quad (no leading zeros, exactly four octets); undefined when invalid. */
export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!OCTET.test(p)) return undefined;
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

/** Formats a 32-bit unsigned integer as a dotted quad. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses `a.b.c.d/p` (0 <= p <= 32); undefined when invalid. */
export function parseCidr(text: string): Ipv4Network | undefined {
  const m = /^([^/]+)\/(3[0-2]|[12][0-9]|[0-9])$/.exec(text);
  if (!m) return undefined;
  const base = parseIpv4(m[1]!);
  if (base === undefined) return undefined;
  const prefix = Number(m[2]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (base & mask) >>> 0;
  const broadcast = (network | (~mask >>> 0)) >>> 0;
  return { text, base, prefix, network, broadcast, mask };
}

/** True when `addr` lies inside `net` (network and broadcast addresses included). */
export function inNetwork(addr: number, net: Ipv4Network): boolean {
  return ((addr & net.mask) >>> 0) === net.network;
}

/**
 * True when `addr` is the network's own address or its broadcast address, which no host may use.
 * /31 and /32 have neither (RFC 3021 point-to-point links; a /32 is one address).
 */
export function isReservedInNetwork(addr: number, net: Ipv4Network): boolean {
  if (net.prefix >= 31) return false;
  return addr === net.network || addr === net.broadcast;
}

/** The network in canonical form (`10.0.0.0/24` for `10.0.0.5/24`). */
export function canonicalCidr(net: Ipv4Network): string {
  return `${formatIpv4(net.network)}/${net.prefix}`;
}
