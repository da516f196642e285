/**
 * `status`'s TLS check (`cluster.tls`): how long each host's certificate and the cluster CA on it
 * stay valid, read on the host from the files the services use (`openssl x509 -enddate`, openssl
 * x509(1)), against the host's own clock. Degraded from {@link CERT_WARN_DAYS} days before the end,
 * down once past it (the services on that host then refuse or are refused TLS). Pure.
 */
import { sh } from '../core/cmd.js';
import type { FactOutput } from '../facts/fact.js';
import type { Inventory } from '../inventory/schema.js';
import { CA_CERT, CERT_WARN_DAYS, HOST_CERT, tlsEnabled } from '../tls/plan.js';
import type { CheckLine, HostReach, Verdict } from './model.js';
import type { Probe } from './script.js';

/** What the probe read: the host's clock and each file's end of validity, in ms since the epoch (undefined: unreadable). */
export interface CertDates {
  nowMs?: number;
  hostCertEndMs?: number;
  caEndMs?: number;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** openssl's `notAfter=Mar  4 12:00:00 2029 GMT` (ASN1_TIME_print) as ms since the epoch; undefined when it is not that form. */
export function parseNotAfter(text: string): number | undefined {
  const m = /^notAfter=([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT$/.exec(text.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[1] as string);
  if (month < 0) return undefined;
  return Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
}

/** The probe's output (`now=<epoch s>`, then `host=` and `ca=` lines each holding openssl's `notAfter=...`) as {@link CertDates}. */
export function parseCertDates(stdout: string): CertDates {
  const out: CertDates = {};
  for (const l of stdout.split('\n')) {
    const [k, ...rest] = l.split(' ');
    const v = rest.join(' ');
    if (k === 'now' && /^\d+$/.test(v)) out.nowMs = Number(v) * 1000;
    if (k === 'host') {
      const t = parseNotAfter(v);
      if (t !== undefined) out.hostCertEndMs = t;
    }
    if (k === 'ca') {
      const t = parseNotAfter(v);
      if (t !== undefined) out.caEndMs = t;
    }
  }
  return out;
}

const DAY_MS = 86_400_000;

/** The verdict of one end date seen at `nowMs`: down past it, degraded within {@link CERT_WARN_DAYS} days, else healthy; with the days left. */
export function expiryVerdict(endMs: number, nowMs: number): { verdict: Verdict; days: number } {
  const days = Math.floor((endMs - nowMs) / DAY_MS);
  return { verdict: endMs <= nowMs ? 'down' : days < CERT_WARN_DAYS ? 'degraded' : 'healthy', days };
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The probe of one host (none when TLS is off): its clock, then the end dates of its certificate and of the CA. */
export function tlsProbes(inv: Inventory): Probe[] {
  if (!tlsEnabled(inv)) return [];
  const end = (f: string) => sh`openssl x509 -enddate -noout -in ${f} 2>&1`;
  return [{ id: 'tls.dates', cmd: sh`echo "now $(date +%s)"; echo "host $(${end(HOST_CERT)})"; echo "ca $(${end(CA_CERT)})"`, timeoutSec: 3, local: true }];
}

/** What {@link tlsLines} reads of each host's result (the shape of src/status/checks.ts `Results`). */
export type TlsResults = ReadonlyMap<string, { reach: HostReach; outputs?: ReadonlyMap<string, FactOutput> }>;

/** One line per host: its certificate's (and the CA's) days left, the worse of the two. */
export function tlsLines(inv: Inventory, results: TlsResults): CheckLine[] {
  if (!tlsEnabled(inv)) return [];
  return inv.hosts.map((h): CheckLine => {
    const r = results.get(h.name);
    const check = `certificate ${h.name}`;
    if (!r?.reach.reachable) return { component: 'tls', check, verdict: 'degraded', host: h.name, reason: `host unreachable: ${r?.reach.reason ?? 'not checked'}`, critical: false };
    const o = r.outputs?.get('tls.dates');
    const d = parseCertDates(o?.stdout ?? '');
    if (d.nowMs === undefined || d.hostCertEndMs === undefined || d.caEndMs === undefined) {
      const what = d.hostCertEndMs === undefined ? HOST_CERT : CA_CERT;
      return { component: 'tls', check, verdict: 'degraded', host: h.name, reason: `cannot read the end date of ${what} (${(o?.stdout ?? '').trim().split('\n').pop()?.slice(0, 120) ?? 'no output'})`, critical: false };
    }
    const host = expiryVerdict(d.hostCertEndMs, d.nowMs);
    const ca = expiryVerdict(d.caEndMs, d.nowMs);
    const worst: Verdict = [host.verdict, ca.verdict].includes('down') ? 'down' : [host.verdict, ca.verdict].includes('degraded') ? 'degraded' : 'healthy';
    const say = (what: string, e: { days: number }, ms: number) => (e.days < 0 ? `${what} expired on ${isoDay(ms)}` : `${what} valid until ${isoDay(ms)} (${e.days} days)`);
    return { component: 'tls', check, verdict: worst, host: h.name, reason: `${say('host certificate', host, d.hostCertEndMs)}, ${say('CA', ca, d.caEndMs)}`, critical: false };
  });
}
