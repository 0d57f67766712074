// The benchmarks' own machinery at toy sizes (bench/push-latency, bench/counter-exactness,
// bench/kube-push on the real kube-apiserver): every
// subscriber ACKs every change, and the traffic counters equal Envoy's exactly across a control-plane
// restart. Only shapes and exactness are asserted — never timings; `make bench` measures those.
import { describe, expect, it } from "vitest";
import { runPushLatency } from "../../bench/push-latency.js";
import { runCounterExactness } from "../../bench/counter-exactness.js";
import { runKubePush } from "../../bench/kube-push.js";
import { runReplicaPush } from "../../bench/replica-push.js";

describe("bench smoke", () => {
  it("push-latency: 6 simulated filters (2 processes) plus a real Envoy sidecar ACK every change; the floor server sees the same fleet; their traffic reports add up exactly", async () => {
    const r = await runPushLatency({ sizes: [6, 12], changes: 2, warmup: 0, processes: 2, envoy: true, floor: true, reports: { size: 12, everyMs: 500, seconds: 2 }, log: () => {} });
    expect(r.sizes.map((s) => [s.fleetSubscribers, s.envoySubscribers, s.processes, s.changes])).toEqual([[6, 3, 2, 2], [12, 3, 2, 2]]);
    for (const s of r.sizes) {
      expect(s.commitToAllAckedMs.all).toHaveLength(2);
      for (const x of [s.commitToAllAckedMs.p50, s.commitToAllAckedMs.p99, s.controlPlane.cpuMsPerChange, s.controlPlane.rssMB, s.floor!.pushToAllAckedMs.p50, s.floor!.cpuUsPerSubscriber]) expect(x).toBeGreaterThan(0);
      expect(s.floor!.pushToAllAckedMs.all).toHaveLength(2);
      expect(s.cpuToFloor).toBeTypeOf("number");
    }
    expect(r.sizes[0]!.cpuPerSubscriberToFirstSize).toBe(1);
    expect(r.targets.p99.size).toBe(15);
    for (const t of Object.values(r.targets)) expect(typeof t.met).toBe("boolean");
    // The fleet's traffic reports: answered, and the totals /v1/traffic shows are exactly theirs.
    expect(r.reports!.answered).toBeGreaterThanOrEqual(12);
    expect(r.reports!.failed).toBe(0);
    expect(r.reports!.exact).toBe(true);
  }, 90_000);

  it("replica-push: 30 filters receive every change with one replica and spread over three on etcd", async () => {
    const r = await runReplicaPush({ size: 30, changes: 2, warmup: 0, processes: 2, log: () => {} });
    expect(r.one.perReplica).toEqual([30, 0, 0]);
    expect(r.three.perReplica).toEqual([10, 10, 10]);
    for (const m of [r.one, r.three]) {
      expect(m.putToAllReceivedMs.all).toHaveLength(2);
      for (const t of m.putToAllReceivedMs.all) expect(t).toBeGreaterThan(0);
    }
  }, 90_000);

  it("counter-exactness: 300 requests with the control plane restarted midway, /v1/traffic = Envoy's count", async () => {
    const r = await runCounterExactness({ requests: 300, concurrency: 6, downMs: 1200, log: () => {} });
    expect(r.client).toEqual({ ok: 294, errors: 6, other: 0 });
    expect(r.envoy).toEqual({ downstreamRqTotal: 300, upstreamRqTotal: 300, downstreamRq5xx: 6 });
    expect(r.traffic).toEqual({ requests: 300, errors: 6 });
    expect(r.perLane.map((l) => l.lane)).toEqual(expect.arrayContaining(["base", "canary", "gray"]));
    for (const l of r.perLane) expect(l.traffic).toBe(l.filterEnvoyStats);
    // Every root context of the sidecar (main thread + 2 workers) reports under its own instance id.
    expect(r.subscribers).toHaveLength(3);
    expect(new Set(r.subscribers.map((x) => x.replace(/ \(gone\)$/, ""))).size).toBe(3);
    expect(r.exact).toBe(true);
    expect(r.difference).toBe(0);
  }, 60_000);

  it("kube-push: kubectl-style replaces and canary Deployments reach every subscriber through a real API server", async () => {
    const r = await runKubePush({ changes: 2, subscribers: 2 });
    for (const k of ["kubectlApplyToAllAckedMs", "canaryAvailableToAllAckedMs", "canaryDeletedToAllAckedMs", "floorRestPutSqliteToAllAckedMs"] as const) {
      expect(r[k].n, k).toBe(2);
      expect(r[k].p99, k).toBeGreaterThan(0);
    }
  }, 90_000);
});
