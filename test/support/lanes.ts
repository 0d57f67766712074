// A richer lane group for decision tests: three lanes, chained fallbacks, a weight and rules.
import type { Filter } from "./filter.js";

export function shopGroup(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "shop",
    services: [
      { name: "web", hosts: ["web", "web.shop.svc.cluster.local"], paths: ["/shop"] },
      { name: "api" },
      { name: "db" },
    ],
    overrideHeader: "x-lane-override",
    traceHeader: "x-request-id",
    stickyKey: { header: "x-user-id" },
    lanes: [
      { name: "gray", services: ["web", "api"], match: [{ headers: { grayrelease: { exact: "version2" } } }] },
      { name: "canary", services: ["web"], fallback: "gray", weight: 10 },
      { name: "dev", services: ["db"], fallback: "canary", match: [{ cookies: { uid: { regex: "1[0-9]{3}" } } }] },
    ],
    ...overrides,
  };
}

const SOURCE_METRIC = /^graylane\.group\.([^.]+)\.lane\.([^.]+)\.source\.([^.]+)\.requests$/;

/** Snapshot of the per-(lane, source) Envoy counters the filter defines. */
export function sourceCounters(f: Filter): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [name, m] of f.vm.metrics) {
    const hit = SOURCE_METRIC.exec(name);
    if (hit) out.set(`${hit[2]}/${hit[3]}`, m.value);
  }
  return out;
}

/** Runs `fn` and returns the single "lane/source" counter it incremented. */
export function decidedBy(f: Filter, fn: () => void): string {
  const before = sourceCounters(f);
  fn();
  const after = sourceCounters(f);
  const moved = [...after].filter(([k, v]) => v !== (before.get(k) ?? 0n)).map(([k]) => k);
  if (moved.length !== 1) throw new Error("expected one decision, counters moved: " + JSON.stringify(moved));
  return moved[0];
}
