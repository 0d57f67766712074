// Analysis of one interval, canary lane against base, from the filters' cumulative counters: the
// interval's numbers are exact differences of two snapshots of the persisted totals (so a report
// arriving late, or a control-plane restart, moves counts between intervals but never loses them).
// Pure functions; the engine does the I/O.
import { Direction } from "../generated/graylane/v1/traffic_pb.js";
import { quantile, type Histogram } from "../traffic/histogram.js";
import type { TrafficTotal } from "../traffic/ingest.js";
import type { AnalysisSpec, MetricSpec } from "./spec.js";
import type { AnalysisInterval, CounterSnapshot, MetricResult, Verdict } from "./state.js";

export type Side = "lane" | "base";

/**
 * Cumulative counters of the lane and of base on the lane's services, counted on their inbound side
 * (where the request reached an instance), keyed by side and histogram bounds.
 */
export function snapshot(totals: readonly TrafficTotal[], lane: string, base: string, services: readonly string[]): CounterSnapshot {
  const out: CounterSnapshot = {};
  const svc = new Set(services);
  for (const t of totals) {
    if (t.direction !== Direction.INBOUND || !svc.has(t.service)) continue;
    const side: Side | undefined = t.lane === lane ? "lane" : t.lane === base ? "base" : undefined;
    if (!side) continue;
    const k = `${side}|${JSON.stringify(t.bounds)}`;
    const c = (out[k] ??= { requests: 0, errors: 0, buckets: t.buckets.map(() => 0) });
    c.requests += t.requests;
    if (t.statusClass === 5) c.errors += t.requests;
    t.buckets.forEach((n, i) => { if (i < c.buckets.length) c.buckets[i]! += n; });
  }
  return out;
}

export interface SideStats {
  requests: number;
  errors: number;
  errorRate: number | null;
  p99Ms: number | null;
}

/** What happened between two snapshots, per side. */
export function between(before: CounterSnapshot, after: CounterSnapshot): Record<Side, SideStats> {
  const acc = { lane: { requests: 0, errors: 0, hists: [] as Histogram[] }, base: { requests: 0, errors: 0, hists: [] as Histogram[] } };
  for (const [k, now] of Object.entries(after)) {
    const side = k.slice(0, k.indexOf("|")) as Side;
    const bounds = JSON.parse(k.slice(k.indexOf("|") + 1)) as number[];
    const was = before[k];
    // A counter below its earlier value means the totals were pruned: count from zero, like a reset.
    const d = (a: number, b: number | undefined) => (b === undefined || a < b ? a : a - b);
    acc[side].requests += d(now.requests, was?.requests);
    acc[side].errors += d(now.errors, was?.errors);
    acc[side].hists.push({ bounds, counts: now.buckets.map((n, i) => d(n, was?.buckets[i])) });
  }
  const stats = (s: (typeof acc)["lane"]): SideStats => ({
    requests: s.requests,
    errors: s.errors,
    errorRate: s.requests > 0 ? s.errors / s.requests : null,
    p99Ms: quantile(s.hists, 0.99),
  });
  return { lane: stats(acc.lane), base: stats(acc.base) };
}

/** Prometheus answers per metric index: a number, or the reason there is none. */
export type ExternalValues = Map<number, number | { error: string }>;

/** The verdict of one interval. Too little lane traffic is inconclusive, never a pass. */
export function judge(spec: AnalysisSpec, stats: Record<Side, SideStats>, external: ExternalValues, at: Date): AnalysisInterval {
  const { lane, base } = stats;
  const enough = lane.requests >= spec.minRequests;
  const baseEnough = base.requests >= spec.minRequests;
  const metrics: MetricResult[] = spec.metrics.map((m, i): MetricResult => {
    if (m.name === "prometheus") {
      const v = external.get(i);
      if (v === undefined || typeof v !== "number") return { name: m.name, value: null, baseValue: null, verdict: "inconclusive", reason: v ? v.error : "no answer" };
      if (m.max !== undefined && v > m.max) return { name: m.name, value: v, baseValue: null, verdict: "fail", reason: `${fmt(v)} > max ${m.max}` };
      if (m.min !== undefined && v < m.min) return { name: m.name, value: v, baseValue: null, verdict: "fail", reason: `${fmt(v)} < min ${m.min}` };
      return { name: m.name, value: v, baseValue: null, verdict: "pass", reason: "within bounds" };
    }
    const pick = (s: SideStats) => (m.name === "error-rate" ? s.errorRate : s.p99Ms);
    const value = pick(lane);
    const baseValue = baseEnough ? pick(base) : null;
    if (!enough || value === null) {
      return { name: m.name, value, baseValue, verdict: "inconclusive", reason: `${lane.requests} lane requests, fewer than ${spec.minRequests}` };
    }
    return threshold(m, value, baseValue);
  });
  let verdict: Verdict = "pass";
  if (metrics.some((r) => r.verdict === "fail")) verdict = "fail";
  else if (!enough || metrics.some((r) => r.verdict === "inconclusive")) verdict = "inconclusive";
  return { at: at.toISOString(), verdict, requests: lane.requests, baseRequests: base.requests, metrics };
}

function threshold(m: Exclude<MetricSpec, { name: "prometheus" }>, value: number, baseValue: number | null): MetricResult {
  const r = (verdict: Verdict, reason: string): MetricResult => ({ name: m.name, value: round(value), baseValue: baseValue === null ? null : round(baseValue), verdict, reason });
  if (m.name === "error-rate") {
    if (value > m.max) return r("fail", `error rate ${pct(value)} > max ${pct(m.max)}`);
    if (m.maxAboveBase !== undefined && baseValue !== null && value - baseValue > m.maxAboveBase) {
      return r("fail", `error rate ${pct(value)} is ${pct(value - baseValue)} above base ${pct(baseValue)} (max ${pct(m.maxAboveBase)})`);
    }
    return r("pass", `error rate ${pct(value)} <= ${pct(m.max)}`);
  }
  if (value > m.maxMs) return r("fail", `p99 ${fmt(value)} ms > max ${m.maxMs} ms`);
  if (m.maxAboveBaseMs !== undefined && baseValue !== null && value - baseValue > m.maxAboveBaseMs) {
    return r("fail", `p99 ${fmt(value)} ms is ${fmt(value - baseValue)} ms above base ${fmt(baseValue)} ms (max ${m.maxAboveBaseMs} ms)`);
  }
  return r("pass", `p99 ${fmt(value)} ms <= ${m.maxMs} ms`);
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;
const fmt = (v: number) => String(Math.round(v * 1000) / 1000);
const pct = (v: number) => `${Math.round(v * 10000) / 100}%`;

/** A Prometheus instant query that must return one number (scalar, or a vector of one sample). */
export async function prometheusValue(address: string, query: string, timeoutMs: number, fetchImpl: typeof fetch = fetch): Promise<number | { error: string }> {
  try {
    const u = new URL("/api/v1/query", address);
    u.searchParams.set("query", query);
    const res = await fetchImpl(u, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { error: `prometheus answered ${res.status}` };
    const body = (await res.json()) as { status?: string; data?: { resultType?: string; result?: unknown } };
    if (body.status !== "success" || !body.data) return { error: "prometheus: no success status" };
    const { resultType, result } = body.data;
    let raw: unknown;
    if (resultType === "scalar" && Array.isArray(result)) raw = result[1];
    else if (resultType === "vector" && Array.isArray(result)) {
      if (result.length !== 1) return { error: `prometheus: query returned ${result.length} series, want 1` };
      raw = (result[0] as { value?: unknown[] }).value?.[1];
    } else return { error: `prometheus: unsupported result type ${String(resultType)}` };
    const v = Number(raw);
    return Number.isFinite(v) ? v : { error: `prometheus: value ${String(raw)} is not a number` };
  } catch (e) {
    return { error: `prometheus: ${(e as Error).message}` };
  }
}
