// The rule streams' state machine (versions, nonces, ACK/NACK, backpressure, reconnects) on
// in-memory streams, as go-control-plane tests its server: no gRPC, no sockets. The same server
// over real grpc-js is test/integration/xds.test.ts.
import { describe, expect, it } from "vitest";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import { RuleRequestSchema } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { SnapshotCache } from "../../control-plane/src/xds/cache.js";
import type { PushMessage } from "../../control-plane/src/xds/protocol.js";
import {
  type RuleServerEvent,
  type RuleStream,
  type RuleStreamHandle,
  RuleStreams,
  type StreamError,
} from "../../control-plane/src/xds/rule-streams.js";
import { MemoryRuleSource, mockGroup } from "../support/rulesource.js";

/** A stream that records what the state machine writes; `full` makes writes report a full buffer. */
class MemoryStream implements RuleStream {
  readonly written: PushMessage[] = [];
  full = false;
  broken = false;
  ended: StreamError | "ok" | undefined;
  private drainWaiters: Array<() => void> = [];

  write(r: PushMessage): boolean {
    if (this.broken) throw new Error("stream gone");
    this.written.push(r);
    return !this.full;
  }
  onDrain(fn: () => void): void {
    this.drainWaiters.push(fn);
  }
  end(error?: StreamError): void {
    this.ended = error ?? "ok";
  }
  drain(): void {
    this.full = false;
    for (const fn of this.drainWaiters.splice(0)) fn();
  }
}

type Fields = Parameters<typeof create<typeof RuleRequestSchema>>[1];

/** One filter root context on a stream of its own. */
class Sub {
  readonly stream = new MemoryStream();
  readonly handle: RuleStreamHandle;
  applied: string;

  constructor(server: RuleStreams, readonly nodeId: string, readonly instanceId: string, opts: { version?: string; scope?: string; full?: boolean; hello?: boolean } = {}) {
    this.applied = opts.version ?? "";
    this.stream.full = opts.full ?? false;
    this.handle = server.open(this.stream, opts.scope);
    if (opts.hello ?? true) this.send({ node: { id: nodeId, service: "mocka" }, instanceId, versionInfo: this.applied });
  }

  get responses(): PushMessage[] {
    return this.stream.written;
  }
  get last(): PushMessage {
    return this.stream.written.at(-1)!;
  }
  send(fields: Fields): void {
    this.handle.request(create(RuleRequestSchema, fields));
  }
  ack(r: PushMessage = this.last): void {
    this.applied = r.version;
    this.send({ versionInfo: r.version, responseNonce: r.nonce });
  }
  nack(r: PushMessage, error: string): void {
    this.send({ versionInfo: this.applied, responseNonce: r.nonce, errorDetail: error });
  }
}

function setup(opts: { groups?: unknown[]; requiredFeatures?: string[]; retentionMs?: number } = {}) {
  let t = Date.UTC(2025, 0, 1, 12, 0, 0);
  const rules = new MemoryRuleSource(opts.groups ?? [mockGroup(10)]);
  const cache = new SnapshotCache(rules, { requiredFeatures: opts.requiredFeatures });
  const registry = new Registry();
  const server = new RuleStreams(cache, {
    registry,
    now: () => t,
    disconnectedRetentionMs: opts.retentionMs,
    responseExtras: { overrideKey: new Uint8Array([1, 2, 3]) },
  });
  const events: RuleServerEvent[] = [];
  server.onEvent((e) => events.push(e));
  const metric = async (name: string, suffix = ""): Promise<number> => {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name)!;
    const values = m.values as Array<{ metricName?: string; value: number }>;
    return (suffix ? values.find((v) => v.metricName?.endsWith(suffix)) : values[0])?.value ?? 0;
  };
  return {
    rules,
    cache,
    server,
    events,
    metric,
    sub: (nodeId: string, instanceId: string, o?: ConstructorParameters<typeof Sub>[3]) => new Sub(server, nodeId, instanceId, o),
    advance: (ms: number) => (t += ms),
    subscriber: (nodeId: string, instanceId: string) =>
      server.status().nodes.find((n) => n.nodeId === nodeId)?.subscribers.find((s) => s.instanceId === instanceId),
  };
}

const ruleSet = (r: PushMessage) => fromBinary(RuleSetSchema, r.ruleSetBytes!);

describe("rule streams: versions, nonces, ACK", () => {
  it("pushes the node's snapshot on hello with a nonce; its ACK makes it the applied version", async () => {
    const { cache, server, events, metric, sub, subscriber } = setup();
    const v1 = cache.current().version;
    const a = sub("node-a", "a-1");
    expect(a.responses).toHaveLength(1);
    expect(a.last).toMatchObject({ version: v1, overrideKey: new Uint8Array([1, 2, 3]) });
    expect(a.last.nonce).not.toBe("");
    expect(ruleSet(a.last)).toMatchObject({ version: v1 });
    expect(ruleSet(a.last).groups.map((g) => g.name)).toEqual(["mock"]);
    expect(subscriber("node-a", "a-1")).toMatchObject({ connected: true, ackedVersion: "", pendingVersion: v1 });
    expect(server.status().nodes[0]!.version).toBe("");

    a.ack();
    expect(subscriber("node-a", "a-1")).toMatchObject({ connected: true, ackedVersion: v1 });
    expect(subscriber("node-a", "a-1")!.pendingVersion).toBeUndefined();
    expect(server.status()).toMatchObject({ version: v1, revision: 0, nodes: [{ nodeId: "node-a", version: v1 }] });
    expect(events.map((e) => e.type)).toEqual(["connect", "push", "ack"]);
    expect(await metric("graylane_xds_pushes_total")).toBe(1);
    expect(await metric("graylane_xds_push_ack_seconds", "_count")).toBe(1);
    expect(await metric("graylane_xds_subscribers")).toBe(1);
  });

  it("every new version goes to every live subscriber once, each push on a stream with its own nonce, one encoding shared by all; same content pushes nothing", () => {
    const { rules, cache, sub } = setup();
    const a = sub("node-a", "a-1");
    const b = sub("node-b", "b-1");
    a.ack();
    b.ack();
    rules.put(mockGroup(20));
    const v2 = cache.current().version;
    for (const s of [a, b]) {
      expect(s.responses).toHaveLength(2);
      expect(s.last.version).toBe(v2);
      s.ack();
    }
    for (const s of [a, b]) expect(new Set(s.responses.map((r) => r.nonce)).size).toBe(2);
    // One response per version, encoded once: the same bytes go to both streams.
    expect(a.last.frame).toBe(b.last.frame);
    expect(a.responses[0]!.frame).not.toBe(a.last.frame);
    rules.put(mockGroup(20)); // a new revision, the same RuleSet
    expect(a.responses).toHaveLength(2);
    expect(b.responses).toHaveLength(2);
  });

  it("a newer version supersedes an unanswered push: only the latest nonce is answered, answers repeated are stale", async () => {
    const { rules, cache, events, metric, sub, subscriber } = setup();
    const a = sub("node-a", "a-1");
    const r1 = a.last;
    rules.put(mockGroup(11)); // before r1 is answered
    const r2 = a.last;
    expect(a.responses).toHaveLength(2);
    expect(r2.version).toBe(cache.current().version);

    a.ack(r1);
    a.nack(r1, "late NACK of a superseded response");
    expect(subscriber("node-a", "a-1")).toMatchObject({ ackedVersion: "", pendingVersion: r2.version });
    expect(subscriber("node-a", "a-1")!.lastNack).toBeUndefined();
    a.ack(r2);
    a.ack(r2); // the answered nonce again
    expect(subscriber("node-a", "a-1")).toMatchObject({ ackedVersion: r2.version });
    expect(events.filter((e) => e.type === "stale").map((e) => e.type === "stale" && e.nonce)).toEqual([r1.nonce, r1.nonce, r2.nonce]);
    expect(await metric("graylane_xds_stale_requests_total")).toBe(3);
    expect(a.responses).toHaveLength(2);
  });

  it("a request before any push (an up-to-date subscriber talking) is stale and changes nothing", () => {
    const { cache, sub, subscriber, events } = setup();
    const v = cache.current().version;
    const a = sub("node-a", "a-1", { version: v });
    a.send({ versionInfo: v, responseNonce: "" });
    expect(a.responses).toHaveLength(0);
    expect(subscriber("node-a", "a-1")).toMatchObject({ ackedVersion: v });
    expect(events.at(-1)).toMatchObject({ type: "stale" });
  });
});

describe("rule streams: NACK and required features", () => {
  it("NACK keeps the last good version, shows the error until a later ACK, and is not re-sent", async () => {
    const { rules, cache, server, metric, sub, subscriber } = setup();
    const a = sub("node-a", "a-1");
    const v1 = a.last.version;
    a.ack();
    rules.put(mockGroup(30));
    const v2 = cache.current().version;
    a.nack(a.last, "required feature signed-override is not supported");
    const s = subscriber("node-a", "a-1")!;
    expect(s).toMatchObject({ ackedVersion: v1, lastNack: { version: v2, error: "required feature signed-override is not supported" } });
    expect(s.pendingVersion).toBeUndefined();
    expect(server.status()).toMatchObject({ version: v2, nodes: [{ version: v1 }] });
    expect(await metric("graylane_xds_nacks_total")).toBe(1);
    expect(a.responses).toHaveLength(2); // no NACK loop

    rules.put(mockGroup(40));
    expect(a.last.version).toBe(cache.current().version);
    a.ack();
    expect(subscriber("node-a", "a-1")!.lastNack).toBeUndefined();
    expect(server.status().nodes[0]!.version).toBe(cache.current().version);
  });

  it("an answer to the latest nonce with another version is a NACK that says so", () => {
    const { sub, subscriber } = setup();
    const a = sub("node-a", "a-1");
    const r = a.last;
    a.send({ versionInfo: "something-else", responseNonce: r.nonce });
    expect(subscriber("node-a", "a-1")).toMatchObject({
      ackedVersion: "",
      lastNack: { version: r.version, error: `answered nonce ${r.nonce} with version "something-else", expected ${r.version}` },
    });
  });

  it("the RuleSet lists the required features; a filter lacking one NACKs and routes on its version", () => {
    const { cache, server, sub, subscriber } = setup({ requiredFeatures: ["signed-override"] });
    const old = "v-from-plugin-config";
    const a = sub("node-a", "a-1", { version: old });
    expect(ruleSet(a.last).requiredFeatures).toEqual(["signed-override"]);
    expect(a.last.version).toBe(cache.current().version);
    a.nack(a.last, "required feature signed-override is not supported");
    expect(subscriber("node-a", "a-1")).toMatchObject({ ackedVersion: old, lastNack: { error: "required feature signed-override is not supported" } });
    expect(server.status().nodes[0]!.version).toBe(old);
  });

  it("a hello carrying an error (a filter that refused its last RuleSet) shows it until an ACK", () => {
    const { sub, subscriber } = setup();
    const a = sub("node-a", "a-1", { hello: false });
    a.send({ node: { id: "node-a" }, instanceId: "a-1", versionInfo: "v0", errorDetail: "bad dfa" });
    expect(subscriber("node-a", "a-1")).toMatchObject({ ackedVersion: "v0", lastNack: { version: "v0", error: "bad dfa" } });
    a.ack();
    expect(subscriber("node-a", "a-1")!.lastNack).toBeUndefined();
  });
});

describe("rule streams: connections", () => {
  it("refuses a first request without node id or instance id, and then ignores the stream", async () => {
    const { server, metric, sub } = setup();
    for (const hello of [{ instanceId: "x" }, { node: { id: "node-a" } }]) {
      const a = sub("", "", { hello: false });
      a.send(hello);
      expect(a.stream.ended).toEqual({ code: "INVALID_ARGUMENT", details: "the first RuleRequest of a stream must carry node.id and instance_id" });
      a.send({ node: { id: "node-a" }, instanceId: "a-1" });
      expect(a.responses).toHaveLength(0);
    }
    expect(server.status().nodes).toEqual([]);
    expect(await metric("graylane_xds_subscribers")).toBe(0);
  });

  it("reconnect: the same instance replaces its entry; up to date gets nothing, behind gets the current version", () => {
    const { rules, cache, server, events, sub, subscriber } = setup();
    const a = sub("node-a", "a-1");
    const v1 = a.last.version;
    a.ack();
    a.handle.closed();
    a.handle.closed(); // reported twice (end, then close): one disconnect
    expect(events.filter((e) => e.type === "disconnect")).toHaveLength(1);
    expect(subscriber("node-a", "a-1")).toMatchObject({ connected: false, ackedVersion: v1 });
    expect(server.status().nodes[0]!.version).toBe(""); // no live subscriber

    const again = sub("node-a", "a-1", { version: v1 });
    expect(again.responses).toHaveLength(0);
    expect(server.status().nodes[0]!.subscribers).toEqual([expect.objectContaining({ connected: true, ackedVersion: v1 })]);

    again.handle.closed();
    rules.put(mockGroup(60));
    const behind = sub("node-a", "a-1", { version: v1 });
    expect(behind.responses.map((r) => r.version)).toEqual([cache.current().version]);
    behind.ack();
    expect(server.status().nodes[0]!.subscribers).toHaveLength(1);
    expect(server.status().nodes[0]!.version).toBe(cache.current().version);
  });

  it("a node is at a version only when every live subscriber ACKed it", () => {
    const { rules, cache, server, sub } = setup();
    const a1 = sub("node-a", "a-1");
    const a2 = sub("node-a", "a-2");
    a1.ack();
    a2.ack();
    expect(server.status().nodes[0]!.version).toBe(cache.current().version);
    rules.put(mockGroup(50));
    a1.ack();
    expect(server.status().nodes[0]!.version).toBe("");
    a2.handle.closed();
    expect(server.status().nodes[0]!.version).toBe(cache.current().version);
  });

  it("a disconnected subscriber stays in status for the retention time, then goes", () => {
    const { server, sub, advance } = setup({ retentionMs: 60_000 });
    const a = sub("node-a", "a-1");
    a.handle.closed();
    advance(60_000);
    expect(server.status().nodes).toHaveLength(1);
    advance(1);
    expect(server.status().nodes).toEqual([]);
  });

  it("a stream whose buffer is full is skipped until it drains, then gets only the latest version", () => {
    const { rules, cache, sub, subscriber } = setup();
    const slow = sub("node-slow", "slow-1", { full: true });
    const fast = sub("node-fast", "fast-1");
    fast.ack();
    for (let w = 11; w <= 14; w++) {
      rules.put(mockGroup(w));
      fast.ack();
    }
    expect(fast.responses).toHaveLength(5);
    expect(slow.responses).toHaveLength(1);
    slow.stream.drain();
    expect(slow.responses.map((r) => r.version)).toEqual([slow.responses[0]!.version, cache.current().version]);
    slow.ack();
    expect(subscriber("node-slow", "slow-1")).toMatchObject({ ackedVersion: cache.current().version });
  });

  it("a stream whose write fails is closed", () => {
    const { rules, events, sub, subscriber } = setup();
    const a = sub("node-a", "a-1");
    a.ack();
    a.stream.broken = true;
    rules.put(mockGroup(20));
    expect(events.at(-1)).toMatchObject({ type: "disconnect", instanceId: "a-1" });
    expect(subscriber("node-a", "a-1")).toMatchObject({ connected: false });
  });

  it("a scoped identity receives only its namespace's groups and cluster-wide ones", () => {
    const shop = (w: number) => mockGroup(w, { name: "shop", namespaces: ["shop"], services: [{ name: "web" }], lanes: [{ name: "canary", services: ["web"], weight: w }] });
    const pay = (w: number) => mockGroup(w, { name: "pay", namespaces: ["pay"], services: [{ name: "ledger" }], lanes: [{ name: "canary", services: ["ledger"], weight: w }] });
    const { rules, cache, sub } = setup({ groups: [mockGroup(10), shop(10), pay(10)] });
    const scoped = sub("node-shop", "s-1", { scope: "shop" });
    const all = sub("node-all", "x-1");
    expect(ruleSet(scoped.last).groups.map((g) => g.name)).toEqual(["mock", "shop"]);
    expect(ruleSet(all.last).groups.map((g) => g.name)).toEqual(["mock", "pay", "shop"]);
    expect(all.last.version).toBe(cache.current().version);
    expect(scoped.last.version).not.toBe(all.last.version);
    scoped.ack();
    all.ack();

    rules.put(pay(20)); // another namespace's change: nothing for the scoped subscriber
    expect(all.responses).toHaveLength(2);
    expect(scoped.responses).toHaveLength(1);
    rules.put(shop(20));
    expect(scoped.responses).toHaveLength(2);
  });
});

describe("rule streams: report requests and shutdown", () => {
  it("requestReports asks the identified live subscribers only, and needs no ACK", () => {
    const { server, sub, subscriber } = setup();
    const live = sub("node-a", "a-1");
    live.ack();
    sub("node-b", "b-1", { hello: false }); // no hello yet
    sub("node-c", "c-1").handle.closed();
    sub("node-d", "d-1", { full: true }); // blocked
    expect(server.requestReports()).toBe(1);
    expect(live.last).toMatchObject({ version: "", nonce: "", reportNow: true });
    expect(subscriber("node-a", "a-1")!.pendingVersion).toBeUndefined();
  });

  it("endAll ends every open stream with OK; after dispose new versions go nowhere", async () => {
    const { rules, server, metric, sub, subscriber } = setup();
    const a = sub("node-a", "a-1");
    const b = sub("node-b", "b-1");
    b.handle.closed();
    server.endAll();
    expect(a.stream.ended).toBe("ok");
    expect(b.stream.ended).toBeUndefined(); // already gone
    expect(subscriber("node-a", "a-1")).toMatchObject({ connected: false });
    expect(await metric("graylane_xds_subscribers")).toBe(0);

    server.dispose();
    const c = sub("node-c", "c-1");
    c.ack();
    rules.put(mockGroup(20));
    expect(c.responses).toHaveLength(1);
  });
});
