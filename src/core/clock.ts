/**
 * Clock offsets between hosts as one round trip can bound them, and which hosts are surely off.
 * Pure; shared by the preflight (`clock:skew`) and `status` (the hosts' clock line). A round trip
 * cannot measure an offset exactly, only bound it: network delay and a busy host widen the bound,
 * and a wide bound never counts as skew.
 */

/** A clock offset bounded by one round trip: `lo <= offset <= hi` (one unit for both: seconds or ms). */
export interface OffsetBound {
  lo: number;
  hi: number;
}

/** The least two bounded offsets can differ by (0 when the bounds overlap); same unit as the bounds. */
export function leastSkew(a: OffsetBound, b: OffsetBound): number {
  return Math.max(0, a.lo - b.hi, b.lo - a.hi);
}

/** A host surely more than the limit off some others, with each of those and the least skew to it. */
export interface SkewedHost {
  name: string;
  others: Array<{ other: string; skew: number }>;
}

/**
 * The hosts whose clocks are surely more than `limit` off others: those off a majority of the
 * others; when none is (two hosts, or a split), every host off at least one other. Input order is
 * kept. An empty list means no skew above `limit` can be shown.
 */
export function skewedHosts(bounds: ReadonlyArray<{ name: string; bound: OffsetBound }>, limit: number): SkewedHost[] {
  const apart = bounds.map((a) => ({
    name: a.name,
    others: bounds
      .filter((b) => b !== a)
      .map((b) => ({ other: b.name, skew: leastSkew(a.bound, b.bound) }))
      .filter((x) => x.skew > limit),
  }));
  const majority = apart.filter((h) => h.others.length > (bounds.length - 1) / 2);
  return majority.length > 0 ? majority : apart.filter((h) => h.others.length > 0);
}
