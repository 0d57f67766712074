// The rule push server with real grpc-js clients on an ephemeral port.
import http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import {
  NodeSchema,
  RuleRequestSchema,
  RuleResponseSchema,
  type RuleResponse,
} from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { GraylaneClient, STREAM_RULES_PATH, encodeRuleResponse, startGrpcServer, type GrpcServerHandle, type RuleServerEvent } from "../../control-plane/src/xds/index.js";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { MemoryRuleSource, mockGroup } from "../support/rulesource.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** One filter root context, as the server sees it. */
class Subscriber {
  readonly client: GraylaneClient;
  call!: grpc.ClientDuplexStream<ReturnType<typeof create<typeof RuleRequestSchema>>, RuleResponse>;
  readonly responses: RuleResponse[] = [];
  status: grpc.StatusObject | undefined;
  applied: string;

  constructor(
    readonly target: string,
    readonly nodeId: string,
    readonly instanceId: string,
    opts: { version?: string; autoAck?: boolean; read?: boolean; client?: GraylaneClient } = {},
  ) {
    this.applied = opts.version ?? "";
    // A connection of its own, like one Envoy worker's stream.
    this.client = opts.client ?? new GraylaneClient(target, { "grpc.use_local_subchannel_pool": 1 });
    this.open(opts.autoAck ?? true, opts.read ?? true);
  }

  open(autoAck = true, read = true): void {
    this.call = this.client.streamRules();
    this.call.on("error", () => {});
    this.call.on("status", (s) => (this.status = s));
    if (read) {
      this.call.on("data", (r: RuleResponse) => {
        this.responses.push(r);
        if (autoAck) this.ack(r);
      });
    }
    this.send({
      node: create(NodeSchema, { id: this.nodeId, service: "mocka", features: [] }),
      instanceId: this.instanceId,
      versionInfo: this.applied,
    });
  }

  send(fields: Parameters<typeof create<typeof RuleRequestSchema>>[1]): void {
    this.call.write(create(RuleRequestSchema, fields));
  }

  ack(r: RuleResponse): void {
    this.applied = r.version;
    this.send({ versionInfo: r.version, responseNonce: r.nonce });
  }

  nack(r: RuleResponse, error: string): void {
    this.send({ versionInfo: this.applied, responseNonce: r.nonce, errorDetail: error });
  }

  async next(count = this.responses.length + 1): Promise<RuleResponse> {
    return waitFor(`response #${count} of ${this.instanceId}`, () => this.responses[count - 1]);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

let server: GrpcServerHandle | undefined;
const subs: Subscriber[] = [];
afterEach(async () => {
  for (const s of subs.splice(0)) s.close();
  await server?.close();
  server = undefined;
});

async function setup(weight = 10, registry?: Registry) {
  const rules = new MemoryRuleSource([mockGroup(weight)]);
  server = await startGrpcServer({ port: 0, rules, registry });
  const target = `127.0.0.1:${server.port}`;
  const events: RuleServerEvent[] = [];
  server.onEvent((e) => events.push(e));
  const sub = (nodeId: string, instanceId: string, opts?: ConstructorParameters<typeof Subscriber>[3]) => {
    const s = new Subscriber(target, nodeId, instanceId, opts);
    subs.push(s);
    return s;
  };
  return { rules, server, target, events, sub };
}

const acked = (events: RuleServerEvent[], instanceId: string, version: string) =>
  events.some((e) => e.type === "ack" && e.instanceId === instanceId && e.version === version);

describe("RuleResponse encoding", () => {
  it("pre-encoded responses decode as RuleResponse with the RuleSet", () => {
    const rs = compileRuleSet(new MemoryRuleSource([mockGroup(10)]).current().groups);
    const bytes = encodeRuleResponse({ version: rs.version, nonce: "n-1", ruleSetBytes: rs.bytes });
    const r = fromBinary(RuleResponseSchema, bytes);
    expect(r.version).toBe(rs.version);
    expect(r.nonce).toBe("n-1");
    expect(toBinary(RuleSetSchema, r.ruleSet!)).toEqual(rs.bytes);
  });
});

describe("RuleDiscovery.StreamRules", () => {
  it("pushes the current RuleSet, records the ACK, and pushes each new version", async () => {
    const registry = new Registry();
    const { rules, server, events, sub } = await setup(10, registry);
    const v1 = server.cache.current().version;
    const a = sub("node-a", "a-1");
    const r1 = await a.next();
    expect(r1.version).toBe(v1);
    expect(r1.ruleSet?.version).toBe(v1);
    expect(r1.ruleSet?.groups.map((g) => g.name)).toEqual(["mock"]);
    await waitFor("ack v1", () => acked(events, "a-1", v1));

    let st = server.status();
    expect(st.version).toBe(v1);
    expect(st.nodes).toHaveLength(1);
    expect(st.nodes[0]).toMatchObject({ nodeId: "node-a", version: v1 });
    expect(st.nodes[0]!.subscribers[0]).toMatchObject({ instanceId: "a-1", connected: true, ackedVersion: v1 });
    expect(st.nodes[0]!.subscribers[0]!.pendingVersion).toBeUndefined();

    rules.put(mockGroup(20));
    const v2 = server.cache.current().version;
    expect(v2).not.toBe(v1);
    const r2 = await a.next();
    expect(r2.version).toBe(v2);
    expect(r2.nonce).not.toBe(r1.nonce);
    await waitFor("ack v2", () => acked(events, "a-1", v2));
    st = server.status();
    expect(st.nodes[0]!.version).toBe(v2);
    expect(st.revision).toBe(1);

    // A revision with the same compiled content is no new version: nothing is pushed.
    rules.put(mockGroup(20));
    await sleep(50);
    expect(a.responses).toHaveLength(2);
    expect(server.status().revision).toBe(2);

    const metrics = await registry.getMetricsAsJSON();
    const hist = metrics.find((m) => m.name === "graylane_xds_push_ack_seconds")!;
    const count = (hist.values as Array<{ metricName?: string; value: number }>).find((v) => v.metricName?.endsWith("_count"))!;
    expect(count.value).toBe(2);
    expect(metrics.find((m) => m.name === "graylane_xds_subscribers")!.values[0]!.value).toBe(1);
  });

  it("NACK: the node stays on the old version, status shows the error, the NACKed version is not re-sent", async () => {
    const registry = new Registry();
    const { rules, server, events, sub } = await setup(10, registry);
    const v1 = server.cache.current().version;
    const a = sub("node-a", "a-1", { autoAck: false });
    a.ack(await a.next());
    await waitFor("ack v1", () => acked(events, "a-1", v1));

    rules.put(mockGroup(30));
    const v2 = server.cache.current().version;
    const r2 = await a.next();
    expect(r2.version).toBe(v2);
    a.nack(r2, "required feature signed-override is not supported");
    await waitFor("nack", () => events.some((e) => e.type === "nack"));

    const st = server.status();
    expect(st.version).toBe(v2);
    expect(st.nodes[0]!.version).toBe(v1);
    const s0 = st.nodes[0]!.subscribers[0]!;
    expect(s0.ackedVersion).toBe(v1);
    expect(s0.pendingVersion).toBeUndefined();
    expect(s0.lastNack).toMatchObject({ version: v2, error: "required feature signed-override is not supported" });
    const nacks = (await registry.getMetricsAsJSON()).find((m) => m.name === "graylane_xds_nacks_total")!;
    expect(nacks.values[0]!.value).toBe(1);

    await sleep(50);
    expect(a.responses).toHaveLength(2); // no NACK loop

    // The next version goes out; its ACK clears the error.
    rules.put(mockGroup(40));
    const v3 = server.cache.current().version;
    const r3 = await a.next();
    expect(r3.version).toBe(v3);
    a.ack(r3);
    await waitFor("ack v3", () => acked(events, "a-1", v3));
    expect(server.status().nodes[0]!.subscribers[0]!.lastNack).toBeUndefined();
    expect(server.status().nodes[0]!.version).toBe(v3);
  });

  it("ignores requests with a stale nonce", async () => {
    const { rules, server, events, sub } = await setup();
    const v1 = server.cache.current().version;
    const a = sub("node-a", "a-1", { autoAck: false });
    const r1 = await a.next();
    a.ack(r1);
    await waitFor("ack v1", () => acked(events, "a-1", v1));

    rules.put(mockGroup(11));
    const r2 = await a.next();
    rules.put(mockGroup(12)); // supersedes r2 before it is answered
    const r3 = await a.next();
    expect(r3.version).toBe(server.cache.current().version);

    a.ack(r2); // stale
    a.nack(r2, "late NACK of a superseded response"); // stale too
    a.send({ versionInfo: r1.version, responseNonce: r1.nonce }); // an old answer repeated
    await waitFor("3 stale", () => events.filter((e) => e.type === "stale").length === 3);
    let s0 = server.status().nodes[0]!.subscribers[0]!;
    expect(s0.ackedVersion).toBe(v1);
    expect(s0.pendingVersion).toBe(r3.version);
    expect(s0.lastNack).toBeUndefined();
    expect(events.some((e) => e.type === "nack")).toBe(false);

    a.ack(r3);
    await waitFor("ack v3", () => acked(events, "a-1", r3.version));
    a.ack(r3); // a repeated ACK of the answered nonce is stale as well
    await waitFor("4 stale", () => events.filter((e) => e.type === "stale").length === 4);
    s0 = server.status().nodes[0]!.subscribers[0]!;
    expect(s0.ackedVersion).toBe(r3.version);
    expect(s0.pendingVersion).toBeUndefined();
    expect(a.responses).toHaveLength(3);
  });

  it("a node is at v only when all its live subscribers ACKed v", async () => {
    const { rules, server, events, sub } = await setup();
    const v1 = server.cache.current().version;
    sub("node-a", "a-1");
    const a2 = sub("node-a", "a-2", { autoAck: false });
    a2.ack(await a2.next());
    await waitFor("both ack", () => acked(events, "a-1", v1) && acked(events, "a-2", v1));
    expect(server.status().nodes[0]!.version).toBe(v1);

    rules.put(mockGroup(50));
    const v2 = server.cache.current().version;
    await waitFor("a-1 acks v2", () => acked(events, "a-1", v2));
    await a2.next(2);
    expect(server.status().nodes[0]!.version).toBe(""); // a-2 has not answered
    a2.close();
    await waitFor("a-2 gone", () => server.status().nodes[0]!.subscribers.some((s) => !s.connected));
    // Only live subscribers count.
    expect(server.status().nodes[0]!.version).toBe(v2);
  });

  it("refuses a first request without node id or instance id", async () => {
    const { target } = await setup();
    const client = new GraylaneClient(target);
    const call = client.streamRules();
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    call.on("data", () => {});
    call.write(create(RuleRequestSchema, { instanceId: "x" }));
    expect((await status).code).toBe(grpc.status.INVALID_ARGUMENT);
    client.close();
  });

  it("reconnect: up to date gets no push, behind gets one", async () => {
    const { rules, server, events, sub } = await setup();
    const v1 = server.cache.current().version;
    const a = sub("node-a", "a-1");
    await waitFor("ack v1", () => acked(events, "a-1", v1));
    a.call.cancel();
    await waitFor("disconnect", () => events.some((e) => e.type === "disconnect"));
    expect(server.status().nodes[0]!.subscribers[0]!.connected).toBe(false);

    // Same instance back, already at v1: connected again, nothing pushed.
    a.open();
    await waitFor("reconnect", () => events.filter((e) => e.type === "connect").length === 2);
    await sleep(100);
    expect(a.responses).toHaveLength(1);
    let st = server.status();
    expect(st.nodes[0]!.subscribers).toHaveLength(1);
    expect(st.nodes[0]!.subscribers[0]).toMatchObject({ connected: true, ackedVersion: v1 });
    expect(st.nodes[0]!.version).toBe(v1);

    // A change while it is away: it reconnects behind and gets the current version.
    a.call.cancel();
    await waitFor("disconnect 2", () => events.filter((e) => e.type === "disconnect").length === 2);
    rules.put(mockGroup(60));
    const v2 = server.cache.current().version;
    a.open();
    const r = await a.next(2);
    expect(r.version).toBe(v2);
    await waitFor("ack v2", () => acked(events, "a-1", v2));
    st = server.status();
    expect(st.nodes[0]!.version).toBe(v2);

    // A restarted filter (new instance id) with a last-applied version from its plugin config.
    const b = sub("node-b", "b-1", { version: v2 });
    await waitFor("b connects", () => events.some((e) => e.type === "connect" && e.instanceId === "b-1"));
    await sleep(50);
    expect(b.responses).toHaveLength(0);
    expect(server.status().nodes.find((n) => n.nodeId === "node-b")!.version).toBe(v2);
  });

  it("200 concurrent subscribers all receive each change once (push → all ACKed latency)", async () => {
    const { rules, server, events, sub } = await setup(1);
    const N = 200;
    const all: Subscriber[] = [];
    for (let i = 0; i < N; i++) all.push(sub(`node-${i % 50}`, `inst-${i}`));
    const v0 = server.cache.current().version;
    await waitFor("all ack v0", () => events.filter((e) => e.type === "ack" && e.version === v0).length === N, 15_000);

    // Count ACKs per version as they arrive instead of scanning the event list.
    const acks = new Map<string, number>();
    let waiting: { version: string; resolve: () => void } | undefined;
    server.onEvent((e) => {
      if (e.type !== "ack") return;
      const n = (acks.get(e.version) ?? 0) + 1;
      acks.set(e.version, n);
      if (waiting && e.version === waiting.version && n === N) waiting.resolve();
    });

    const latencies: number[] = [];
    const CHANGES = 20;
    for (let c = 0; c < CHANGES; c++) {
      const t0 = performance.now();
      let done!: () => void;
      const allAcked = new Promise<void>((resolve) => (done = resolve));
      // The PUT-equivalent: a committed revision (the store calls the listeners after commit).
      rules.put(mockGroup(2 + c));
      const v = server.cache.current().version;
      waiting = { version: v, resolve: done };
      if ((acks.get(v) ?? 0) === N) done();
      await allAcked;
      latencies.push(performance.now() - t0);
    }
    for (const s of all) expect(s.responses).toHaveLength(CHANGES + 1);
    const st = server.status();
    expect(st.nodes).toHaveLength(50);
    for (const n of st.nodes) expect(n.version).toBe(st.version);

    const sorted = [...latencies].sort((a, b) => a - b);
    const pct = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
    console.log(
      `[xds] change → all ${N} subscribers ACKed, over ${CHANGES} changes: p50 ${pct(0.5).toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms (min ${sorted[0]!.toFixed(1)}, max ${sorted[sorted.length - 1]!.toFixed(1)})`,
    );
    expect(pct(0.5)).toBeLessThan(2_000);
  }, 30_000);

  it("a subscriber that never reads does not delay the others", async () => {
    // Big RuleSets (~30 kB) so the silent stream's flow-control window and buffers fill up.
    const big = (w: number) =>
      mockGroup(w, {
        services: Array.from({ length: 600 }, (_, i) => ({ name: `svc-${i}`, hosts: [`svc-${i}.shop.svc.cluster.local`] })),
        lanes: [{ name: "canary", services: ["svc-0"], weight: w }],
      });
    const rules = new MemoryRuleSource([big(1)]);
    server = await startGrpcServer({ port: 0, rules });
    const target = `127.0.0.1:${server.port}`;
    const events: RuleServerEvent[] = [];
    server.onEvent((e) => events.push(e));
    // grpc-js clients buffer every incoming message whether the app reads or not, so the silent
    // subscriber is a raw HTTP/2 stream that sends its hello and then never reads: HTTP/2 flow
    // control stops the server's writes to it, as with a stuck proxy.
    const session = http2.connect(`http://${target}`);
    const slow = session.request({ ":method": "POST", ":path": STREAM_RULES_PATH, "content-type": "application/grpc", te: "trailers" });
    slow.on("error", () => {});
    const hello = toBinary(RuleRequestSchema, create(RuleRequestSchema, { node: { id: "node-slow" }, instanceId: "slow-1" }));
    const frame = Buffer.alloc(5 + hello.length);
    frame.writeUInt32BE(hello.length, 1);
    frame.set(hello, 5);
    slow.write(frame);
    slow.pause();
    const fast = new Subscriber(target, "node-fast", "fast-1");
    subs.push(fast);
    session.on("error", () => {});
    expect(server.cache.current().bytes.length).toBeGreaterThan(25_000);
    await waitFor("fast ack", () => acked(events, "fast-1", server!.cache.current().version));

    const latencies: number[] = [];
    for (let c = 0; c < 40; c++) {
      const t0 = performance.now();
      rules.put(big(2 + c));
      const v = server.cache.current().version;
      await waitFor(`fast ack ${c}`, () => acked(events, "fast-1", v), 2_000);
      latencies.push(performance.now() - t0);
    }
    expect(fast.responses).toHaveLength(41);
    expect(Math.max(...latencies)).toBeLessThan(500);
    // The silent stream was written to until its buffer filled, then skipped (only the latest
    // version would follow once it drains): far fewer than 41 buffered RuleSets.
    const slowPushes = events.filter((e) => e.type === "push" && e.instanceId === "slow-1").length;
    console.log(`[xds] silent subscriber: ${slowPushes} of 41 versions written before its stream was skipped; fast subscriber push→ACK max ${Math.max(...latencies).toFixed(1)} ms`);
    expect(slowPushes).toBeLessThan(41);
    const s = server.status().nodes.find((n) => n.nodeId === "node-slow")!.subscribers[0]!;
    expect(s.ackedVersion).toBe("");
    expect(s.connected).toBe(true);

    // Once it reads again it drains what was buffered and then gets the latest version, once.
    const current = server.cache.current().version;
    let buf = Buffer.alloc(0);
    const got: RuleResponse[] = [];
    slow.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const n = buf.readUInt32BE(1);
        got.push(fromBinary(RuleResponseSchema, buf.subarray(5, 5 + n)));
        buf = buf.subarray(5 + n);
      }
    });
    slow.resume();
    await waitFor("slow catches up", () => got.at(-1)?.version === current);
    await sleep(50);
    expect(got).toHaveLength(slowPushes + 1);
    expect(events.filter((e) => e.type === "push" && e.instanceId === "slow-1").length).toBe(slowPushes + 1);
    session.destroy();
  }, 20_000);
});
