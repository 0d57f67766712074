// gRPC through real Envoys in lanes: a grpc-js echo service in v1 (base) and v2 (canary), one
// sidecar Envoy each with HTTP/2 clusters (the service's protocol "grpc"), and the gateway in front.
// gRPC failures come back as HTTP 200 with grpc-status UNAVAILABLE; the filters count them by that
// status, so a canary answering UNAVAILABLE to 30% of calls is rolled back, and a healthy one passes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolve } from "node:path";
import { startControlPlane, type ControlPlane } from "../../control-plane/src/server/index.js";
import { gatewayConfig, meshConfigs, type Topology } from "../../control-plane/src/mesh/envoy-config.js";
import { startEnvoy, type RunningEnvoy } from "../../control-plane/src/mesh/envoy-process.js";
import { openStore } from "../../control-plane/src/store/index.js";
import type { RuleServerStatus, TrafficSummary } from "../../control-plane/src/contracts.js";
import { ECHO_PATH, echoClient, startGrpcMockApp, type GrpcMockApp } from "../../demo/grpc-mock-app.js";
import { freePorts, startOnFreePort } from "../../demo/stack.js";
import { envoyBin } from "../support/envoy.js";

const GROUP = {
  name: "echo",
  services: [{ name: "echo", paths: ["/graylane.mock.Echo/"], protocol: "grpc" }],
  stickyKey: { header: "x-user-id" },
  lanes: [{ name: "canary", services: ["echo"] }],
};
// Per Envoy, the filter root contexts that subscribe: the main thread and one per worker.
const SUBSCRIBERS = { sidecar: 3, gateway: 2 };

let cp: ControlPlane;
let store: Awaited<ReturnType<typeof openStore>>;
const apps: GrpcMockApp[] = [];
const envoys: RunningEnvoy[] = [];
let gateway = "";

async function status(): Promise<RuleServerStatus> {
  return (await (await fetch(`${cp.url}/v1/status`)).json()) as RuleServerStatus;
}
async function waitAllAcked(ids: Record<string, number>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const st = await status();
    const pending = Object.entries(ids).filter(([id, n]) => {
      const live = st.nodes.find((x) => x.nodeId === id)?.subscribers.filter((s) => s.connected) ?? [];
      return live.length < n || live.some((s) => s.ackedVersion !== st.version);
    });
    if (pending.length === 0) return;
    if (Date.now() > end) throw new Error(`not ACKed: ${pending.map(([id]) => id).join(", ")}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  store = await openStore(":memory:");
  cp = await startControlPlane({ port: 0, grpcPort: 0, store, rollout: { tickMs: 50, reportSettleMs: 200 } });
  const put = await fetch(`${cp.url}/v1/lanegroups/echo`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(GROUP) });
  expect(put.status).toBe(201); // created
  const ports = await freePorts(6);
  for (const [i, version] of ["v1", "v2"].entries()) apps.push(await startGrpcMockApp({ name: "echo", version, port: ports[i * 3]! }));
  const topology: Topology = {
    group: "echo",
    services: [{
      name: "echo", paths: GROUP.services[0]!.paths, protocol: "grpc",
      instances: [
        { lane: "base", version: "v1", appPort: ports[0]!, inboundPort: ports[1]!, outboundPort: ports[2]! },
        { lane: "canary", version: "v2", appPort: ports[3]!, inboundPort: ports[4]!, outboundPort: ports[5]! },
      ],
    }],
    gateway: { port: 0 }, // picked when the gateway starts
    controlPlane: { grpcHost: "127.0.0.1", grpcPort: cp.grpcPort },
    wasmPath: resolve("filter/build/filter.wasm"),
    plugin: { reportIntervalMs: 500 },
  };
  const bin = envoyBin();
  const sidecars = meshConfigs(topology).filter((c) => c.id !== "gateway");
  envoys.push(...await Promise.all(sidecars.map((c) => startEnvoy(bin, c.id, c.config, 2))));
  const gw = await startOnFreePort((port) => startEnvoy(bin, "gateway", gatewayConfig({ ...topology, gateway: { port } }), 1));
  envoys.push(gw.envoy);
  await waitAllAcked({ "echo-base-0": SUBSCRIBERS.sidecar, "echo-canary-1": SUBSCRIBERS.sidecar, gateway: SUBSCRIBERS.gateway });
  gateway = `127.0.0.1:${gw.port}`;
}, 60_000);

afterAll(async () => {
  await Promise.all(envoys.map((e) => e.stop()));
  await Promise.all(apps.map((a) => a.close()));
  await cp?.close();
  store?.close();
});

type Rel = { status: string; weight: number; reason?: string; analysisRun?: { successes: number; failures: number; intervals: Array<{ verdict: string }> } };
const api = async (method: string, path: string, body?: unknown): Promise<Rel> => {
  const res = await fetch(`${cp.url}${path}`, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await res.json() as { release: Rel };
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.release;
};
const INTERVAL_MS = 1500;
const analysis = { interval: `${INTERVAL_MS}ms`, count: 2, failureLimit: 1, minRequests: 20, deadline: "30s", metrics: [{ name: "error-rate", max: 0.05 }] };

/** Steady unary calls of distinct users through the gateway until stopped; counts answers by gRPC code and body. */
function load() {
  const client = echoClient(gateway);
  let on = true;
  let user = 0;
  const codes = new Map<number, number>();
  const bodies = new Map<string, number>();
  const done = Promise.all(Array.from({ length: 8 }, async () => {
    while (on) {
      const r = await client.call({ "x-user-id": `grpc-${process.pid}-${++user}` });
      codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      if (r.code === 0) bodies.set(r.body, (bodies.get(r.body) ?? 0) + 1);
    }
  }));
  return { codes, bodies, stop: async () => { on = false; await done; client.close(); } };
}

async function until(name: string, ms = 30_000): Promise<Rel> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await api("GET", `/v1/releases/${name}`);
    if (r.status !== "progressing") return r;
    if (Date.now() > end) throw new Error(`release ${name} still ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe("gRPC in lanes through Envoy", () => {
  it("the override-free route: every call reaches v1; the echo path is gRPC end to end over HTTP/2", async () => {
    const client = echoClient(gateway);
    try {
      for (let i = 0; i < 10; i++) expect(await client.call({ "x-user-id": `plain-${i}` })).toEqual({ code: 0, body: "echo(v1)" });
    } finally {
      client.close();
    }
    expect(ECHO_PATH.startsWith(GROUP.services[0]!.paths[0]!)).toBe(true);
  });

  it("a canary answering UNAVAILABLE to 30% (HTTP 200, grpc-status 14) is rolled back; /v1/traffic shows the statuses", async () => {
    apps[1]!.options.failRate = 0.3;
    const traffic = load();
    let r: Rel;
    let summary: TrafficSummary;
    try {
      await api("POST", "/v1/releases", { name: `grpc-failing-${process.pid}`, group: "echo", lane: "canary", steps: [{ setWeight: 50 }, { analysis: {} }, { setWeight: 100 }], analysis });
      r = await until(`grpc-failing-${process.pid}`);
      summary = (await (await fetch(`${cp.url}/v1/traffic?group=echo&window=5m`)).json()) as TrafficSummary;
    } finally {
      await traffic.stop();
      apps[1]!.options.failRate = 0;
    }
    expect(r.status).toBe("failed");
    expect(r.weight).toBe(0);
    expect(r.reason).toMatch(/error rate (2\d|3\d)(\.\d+)?% > max 5%/);
    expect(traffic.codes.get(14) ?? 0).toBeGreaterThan(0); // the clients saw UNAVAILABLE
    const canary = summary.services.find((x) => x.service === "echo" && x.lane === "canary")!;
    const st = canary.grpcStatuses;
    expect(st.UNAVAILABLE! / canary.requests).toBeGreaterThan(0.2);
    expect(st.UNAVAILABLE! / canary.requests).toBeLessThan(0.4);
    expect(st.OK! + st.UNAVAILABLE!).toBe(canary.requests);
    const base = summary.services.find((x) => x.service === "echo" && x.lane === "base")!;
    expect(base.grpcStatuses).toEqual({ OK: base.requests });
    expect(base.errorRate).toBe(0);
  }, 60_000);

  it("a healthy gRPC canary passes analysis and reaches 100%", async () => {
    const traffic = load();
    let r: Rel;
    try {
      await api("POST", "/v1/releases", { name: `grpc-healthy-${process.pid}`, group: "echo", lane: "canary", steps: [{ setWeight: 50 }, { analysis: {} }, { setWeight: 100 }], analysis });
      r = await until(`grpc-healthy-${process.pid}`);
    } finally {
      await traffic.stop();
    }
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
    expect(r.analysisRun!.successes).toBe(2);
    expect([...traffic.codes.keys()]).toEqual([0]);
    expect(traffic.bodies.get("echo(v2)") ?? 0).toBeGreaterThan(0);
  }, 60_000);
});
