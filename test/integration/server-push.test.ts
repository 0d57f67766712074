// The whole control plane as `graylane serve` runs it: a PUT through the REST API reaches 200
// subscribers over real gRPC, every one ACKs, and /v1/status and /metrics say so. Prints the time
// from PUT accepted to all 200 ACKed (p50/p99 over 20 changes).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { RuleRequestSchema, type RuleRequest, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { startControlPlane, type ControlPlane } from "../../control-plane/src/server/index.js";
import { mockGroup } from "../support/filter.js";

const SUBSCRIBERS = 200;
const CHANGES = 20;

let server: ControlPlane;
const clients: GraylaneClient[] = [];
const streams: Array<ClientDuplexStream<RuleRequest, RuleResponse>> = [];
/** version → how many subscribers ACKed it, and when the last one did */
const acks = new Map<string, { count: number; lastAt: number }>();
const received: string[][] = [];

beforeAll(async () => {
  server = await startControlPlane({ port: 0, grpcPort: 0, store: ":memory:" });
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const client = new GraylaneClient(`127.0.0.1:${server.grpcPort}`, { "grpc.use_local_subchannel_pool": 1 });
    const stream = client.streamRules();
    const id = `node-${i % 50}`; // 4 subscribers (worker VMs) per node
    const instanceId = `${id}/${i}`;
    received.push([]);
    stream.on("data", (r: RuleResponse) => {
      received[i].push(r.version);
      stream.write(create(RuleRequestSchema, { instanceId, versionInfo: r.version, responseNonce: r.nonce }));
      const a = acks.get(r.version) ?? { count: 0, lastAt: 0 };
      a.count++;
      a.lastAt = performance.now();
      acks.set(r.version, a);
    });
    stream.on("error", () => {});
    stream.write(create(RuleRequestSchema, { node: { id }, instanceId }));
    clients.push(client);
    streams.push(stream);
  }
  // Every subscriber starts on the empty store's RuleSet before any change is measured.
  await allAcked(await versionNow());
}, 60_000);

afterAll(async () => {
  for (const s of streams) s.cancel();
  for (const c of clients) c.close();
  await server?.close();
});

async function put(body: unknown): Promise<{ status: number; at: number }> {
  const res = await fetch(`${server.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const at = performance.now();
  await res.text();
  return { status: res.status, at };
}

async function allAcked(version: string, timeoutMs = 10_000): Promise<number> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const a = acks.get(version);
    if (a && a.count >= SUBSCRIBERS) return a.lastAt;
    if (performance.now() > end) throw new Error(`only ${a?.count ?? 0} of ${SUBSCRIBERS} ACKed ${version}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const versionNow = async () => ((await (await fetch(`${server.url}/v1/status`)).json()) as { version: string }).version;

describe("graylane serve: REST change → gRPC push → ACK", () => {
  it(`a PUT reaches all ${SUBSCRIBERS} subscribers, each change exactly once`, async () => {
    const latencies: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const { status, at } = await put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: i + 1 }] }));
      expect(status).toBe(i === 0 ? 201 : 200);
      const version = await versionNow();
      latencies.push((await allAcked(version)) - at);
    }
    latencies.sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)];
    console.log(`[serve] PUT accepted → all ${SUBSCRIBERS} subscribers ACKed, over ${CHANGES} changes: p50 ${p(0.5).toFixed(1)} ms, p99 ${p(0.99).toFixed(1)} ms`);
    for (const r of received) expect(new Set(r).size).toBe(r.length); // no version twice
    for (const r of received) expect(r.length).toBe(CHANGES + 1); // the empty store's RuleSet on connect, then each change

    const status = (await (await fetch(`${server.url}/v1/status`)).json()) as { version: string; nodes: Array<{ nodeId: string; version: string }> };
    expect(status.nodes).toHaveLength(50);
    for (const n of status.nodes) expect(n.version).toBe(status.version);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/graylane_xds_push_ack_seconds_count \d+/);
    expect(metrics).toMatch(/graylane_xds_subscribers \d+/);
  }, 120_000);
});
