// bench/counter-exactness: after a fixed number of requests through a real Envoy sidecar with the
// filter — with the control plane stopped and started again in the middle — /v1/traffic counts
// exactly what Envoy itself counted.
//
// The control plane (startControlPlane, SQLite in memory, the 5-group RuleSet),
// one sidecar for shop0-web from control-plane/src/mesh (Envoy --concurrency 2: three filter root
// contexts, each reporting its own cumulative counters every second) in front of a Node app. The
// requests go to the sidecar's inbound listener, where /v1/traffic counts: a quarter with the
// override header, a seventh with a propagated lane header, the rest decided by rules and weights;
// every 50th answered 503 by the app. Phases: the first half; the control plane stopped; a
// quarter while it is down (the filters keep counting, their reports fail); started again on the
// same store and ports; the last quarter. Then the counts are compared, without tolerance:
//   /v1/traffic requests (sum over lanes) = Envoy's http.inbound-shop0-web.downstream_rq_total
//   = the local-app cluster's upstream_rq_total = answers the client got; errors likewise;
//   and per lane, /v1/traffic = the filter's own Envoy counters.
import { createServer, Agent, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { startControlPlane, type ControlPlane } from "../control-plane/src/server/index.js";
import { instanceId, sidecarConfig, type Topology } from "../control-plane/src/mesh/envoy-config.js";
import { envoyBin, startEnvoy, type RunningEnvoy } from "../control-plane/src/mesh/envoy-process.js";
import { openStore, type Store } from "../control-plane/src/store/index.js";
import { freePorts, httpGet, isMain, QUICK, sleep, writeResult } from "./support/common.js";
import { envoyStats } from "./support/envoy.js";
import { benchGroupsJson } from "./support/ruleset.js";

export interface CounterOptions {
  requests: number;
  concurrency: number;
  /** Least time the control plane stays down (reports every 1 s fail meanwhile). */
  downMs: number;
  log?: (line: string) => void;
}

export const DEFAULTS: CounterOptions = QUICK ? { requests: 400, concurrency: 8, downMs: 2500 } : { requests: 100_000, concurrency: 32, downMs: 2500 };

const SERVICE = "shop0-web";
const GROUP = "shop0";
const ENVOY_SUBSCRIBERS = 3;

interface TrafficRow { service: string; lane: string; requests: number; errorRate: number }

export async function runCounterExactness(opts: CounterOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const store: Store = await openStore(":memory:");
  let server: ControlPlane | undefined;
  let grpcPort = 0;
  // Started again on the same ports and store in the middle.
  const start = async () => {
    server = await startControlPlane({ port: server?.port ?? 0, grpcPort, store });
    grpcPort = server.grpcPort;
  };
  await start();
  let envoy: RunningEnvoy | undefined;
  let app: Server | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency });
  try {
    for (const g of benchGroupsJson()) {
      const res = await fetch(`${server!.url}/v1/lanegroups/${g.name}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(g) });
      if (res.status >= 300) throw new Error(`PUT ${res.status}: ${await res.text()}`);
    }
    app = createServer((req, res) => {
      res.statusCode = req.url?.includes("fail") ? 503 : 200;
      res.end("ok");
    });
    app.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => app!.listen(0, "127.0.0.1", r));
    const [inboundPort, outboundPort] = await freePorts(2);
    const topology: Topology = {
      group: GROUP,
      services: [{ name: SERVICE, hosts: [SERVICE, `${SERVICE}.default.svc.cluster.local`], instances: [{ lane: "base", version: "v1", appPort: (app.address() as AddressInfo).port, inboundPort, outboundPort }] }],
      gateway: { port: 0 },
      controlPlane: { grpcHost: "127.0.0.1", grpcPort },
      wasmPath: resolve("filter/build/filter.wasm"),
      plugin: { reportIntervalMs: 1000 },
    };
    envoy = await startEnvoy(envoyBin(), "bench-counter-sidecar", sidecarConfig(topology, 0, 0), 2);
    const nodeId = instanceId(SERVICE, topology.services[0].instances[0], 0);
    // Every root context subscribed and ACKed the RuleSet before any request.
    for (const end = Date.now() + 30_000; ;) {
      const st = (await (await fetch(`${server!.url}/v1/status`)).json()) as { version: string; nodes: Array<{ nodeId: string; subscribers: Array<{ connected: boolean; ackedVersion: string }> }> };
      const live = st.nodes.find((n) => n.nodeId === nodeId)?.subscribers.filter((s) => s.connected && s.ackedVersion === st.version) ?? [];
      if (live.length >= ENVOY_SUBSCRIBERS) break;
      if (Date.now() > end) throw new Error(`sidecar filters did not ACK: ${JSON.stringify(st)}`);
      await sleep(50);
    }

    const url = `http://127.0.0.1:${inboundPort}`;
    const sent = { ok: 0, errors: 0, other: 0 };
    let seq = 0;
    const send = async (n: number) => {
      let next = 0;
      await Promise.all(Array.from({ length: opts.concurrency }, async () => {
        while (next < n) {
          next++;
          const i = ++seq;
          const headers: Record<string, string> = { host: SERVICE, "x-request-id": `counter-${process.pid}-${i}`, "x-user-id": `user-${i % 5000}`, "user-agent": "bench" };
          if (i % 4 === 0) headers["x-asm-prefer-tag"] = "canary";
          else if (i % 7 === 0) headers["x-graylane-lane"] = "gray";
          const r = await httpGet(`${url}/items/${i}${i % 50 === 0 ? "/fail" : ""}`, headers, agent);
          if (r.status === 200) sent.ok++;
          else if (r.status === 503) sent.errors++;
          else sent.other++;
        }
      }));
    };
    const t0 = performance.now();
    const half = Math.floor(opts.requests / 2);
    const quarter = Math.floor(opts.requests / 4);
    await send(half);
    log(`counter-exactness: ${half} requests sent; stopping the control plane`);
    await server!.close();
    const downAt = performance.now();
    await send(quarter);
    // Down for at least a report interval or two, so reports do fail and are retried cumulatively.
    await sleep(Math.max(0, opts.downMs - (performance.now() - downAt)));
    const downSeconds = (performance.now() - downAt) / 1000;
    log(`counter-exactness: ${quarter} requests sent with the control plane down; starting it again`);
    await start();
    await send(opts.requests - half - quarter);
    const loadSeconds = (performance.now() - t0) / 1000;

    // Envoy's own counts (final: nothing is in flight any more).
    const stats = await envoyStats(envoy.admin);
    const envoyDownstream = stats.get(`http.inbound-${SERVICE}.downstream_rq_total`) ?? -1;
    const envoyUpstream = stats.get("cluster.local-app.upstream_rq_total") ?? -1;
    const envoy5xx = stats.get(`http.inbound-${SERVICE}.downstream_rq_5xx`) ?? -1;
    const filterLanes = new Map<string, number>();
    for (const [k, v] of stats) {
      const m = new RegExp(`^wasmcustom\\.graylane\\.group\\.${GROUP}\\.lane\\.([^.]+)\\.source\\.[^.]+\\.requests$`).exec(k);
      if (m) filterLanes.set(m[1], (filterLanes.get(m[1]) ?? 0) + v);
    }

    // /v1/traffic until every report arrived (or 30 s): report-now, read, until it stops moving.
    const traffic = async () => {
      await fetch(`${server!.url}/v1/traffic/report-now`, { method: "POST" });
      const s = (await (await fetch(`${server!.url}/v1/traffic?group=${GROUP}&window=1h`)).json()) as { services: TrafficRow[] };
      const rows = s.services.filter((r) => r.service === SERVICE);
      return { total: rows.reduce((a, r) => a + r.requests, 0), errors: Math.round(rows.reduce((a, r) => a + r.requests * r.errorRate, 0)), lanes: new Map(rows.map((r) => [r.lane, r.requests])) };
    };
    const settleStart = performance.now();
    let t = await traffic();
    for (let stable = 0, end = Date.now() + 30_000; Date.now() < end && t.total !== envoyDownstream && stable < 10;) {
      await sleep(500);
      const now = await traffic();
      stable = now.total === t.total ? stable + 1 : 0;
      t = now;
    }
    const settleSeconds = (performance.now() - settleStart) / 1000;
    const lanes = [...new Set([...t.lanes.keys(), ...filterLanes.keys()])].sort();
    const perLane = lanes.map((lane) => ({ lane, traffic: t.lanes.get(lane) ?? 0, filterEnvoyStats: filterLanes.get(lane) ?? 0 }));
    const clientTotal = sent.ok + sent.errors + sent.other;
    // Who the control plane saw (subscribers by instance), for telling a lost report from a foreign one.
    const status = (await (await fetch(`${server!.url}/v1/status`)).json()) as { nodes: Array<{ nodeId: string; subscribers: Array<{ instanceId: string; connected: boolean }> }> };
    const subscribers = status.nodes.flatMap((n) => n.subscribers.map((x) => `${x.instanceId}${x.connected ? "" : " (gone)"}`));
    const exact = t.total === envoyDownstream && envoyDownstream === envoyUpstream && envoyUpstream === clientTotal && clientTotal === opts.requests
      && t.errors === envoy5xx && envoy5xx === sent.errors && perLane.every((l) => l.traffic === l.filterEnvoyStats);
    return {
      setup: {
        envoy: "one sidecar from control-plane/src/mesh (Envoy --concurrency 2, 3 filter root contexts, reports every 1 s)",
        phases: [`${half} requests`, "control plane stopped", `${quarter} requests (down ${downSeconds.toFixed(1)} s: reports fail)`, "control plane started (same store, same ports)", `${opts.requests - half - quarter} requests`],
        concurrency: opts.concurrency, loadSeconds: Number(loadSeconds.toFixed(1)), settleSeconds: Number(settleSeconds.toFixed(1)),
      },
      requests: opts.requests,
      client: sent,
      envoy: { downstreamRqTotal: envoyDownstream, upstreamRqTotal: envoyUpstream, downstreamRq5xx: envoy5xx },
      traffic: { requests: t.total, errors: t.errors },
      perLane,
      exact,
      difference: t.total - envoyDownstream,
      subscribers,
    };
  } finally {
    agent.destroy();
    await envoy?.stop();
    await server?.close();
    store.close();
    await new Promise((r) => app ? app.close(r) : r(undefined));
  }
}

if (isMain(import.meta.url)) {
  runCounterExactness().then((r) => {
    console.log(`  ${r.requests} requests: /v1/traffic ${r.traffic.requests}, Envoy downstream_rq_total ${r.envoy.downstreamRqTotal}, upstream_rq_total ${r.envoy.upstreamRqTotal}; errors ${r.traffic.errors} vs ${r.envoy.downstreamRq5xx} — ${r.exact ? "exact" : "NOT EXACT"}`);
    for (const l of r.perLane) console.log(`    lane ${l.lane}: /v1/traffic ${l.traffic}, filter's Envoy counters ${l.filterEnvoyStats}`);
    console.log(`  wrote ${writeResult("counter-exactness", r)}`);
    process.exit(r.exact ? 0 : 1);
  }).catch((e) => { console.error(e); process.exit(1); });
}
