// overrideTrust: signed. The value is lane.expiry.signature (HMAC-SHA256 in base64url); the key
// reaches the real filter.wasm only over the rule stream from the real gRPC server, never in its
// plugin configuration or RuleSet. Wrong, tampered or expired values are ignored and counted.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { signOverride } from "../../control-plane/src/auth/override.js";
import { main } from "../../control-plane/src/cli/main.js";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { TrafficIngest } from "../../control-plane/src/traffic/index.js";
import { RealClock } from "../../control-plane/src/wasmhost/clock.js";
import { grpcBridge, WasmVm } from "../../control-plane/src/wasmhost/index.js";
import { parseGrpcService } from "../../control-plane/src/wasmhost/grpc.js";
import { startGrpcServer } from "../../control-plane/src/xds/index.js";
import { mockGroup, newFilter, routeTo, type Filter } from "../support/filter.js";
import { MemoryRuleSource } from "../support/rulesource.js";
import { TestServer } from "../support/api.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const LONG = "canary-" + "x".repeat(55); // "lane.expiry" longer than one SHA-256 block
const group = () => mockGroup({ overrideTrust: "signed", lanes: [{ name: "canary", services: ["mocka"] }, { name: LONG, services: ["mocka"] }, { name: "other", services: ["mocka"] }] });
const now = () => Math.floor(Date.now() / 1000);

async function subscribed(key: Uint8Array | undefined, config: Record<string, unknown> = {}): Promise<{ f: Filter; version: () => string }> {
  const rules = new MemoryRuleSource([group()]);
  const db = new Database(":memory:");
  const server = await startGrpcServer({ port: 0, rules, traffic: new TrafficIngest({ db, rules }), overrideKey: key && { current: key } });
  const bridge = grpcBridge({ cp: `127.0.0.1:${server.port}` });
  cleanups.push(() => server.close(), () => db.close(), () => bridge.close());
  const f = await newFilter({ clock: new RealClock() as never, grpc: bridge, edge: true, config: { cluster: "cp", node: { id: "gw" }, ...config } });
  f.vm.tick();
  const end = Date.now() + 5000;
  while (!server.status().nodes.some((n) => n.nodeId === "gw" && n.version === server.status().version)) {
    if (Date.now() > end) throw new Error("no ACK");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { f, version: () => server.status().version };
}

const laneOf = (f: Filter, value: string) => f.decide({ "x-asm-prefer-tag": value }, routeTo("mocka")).route ?? "base";
const ignored = (f: Filter) => Number((f.vm as WasmVm).metric("graylane.override_ignored")?.value ?? 0n);

describe("signed overrides in the filter", () => {
  it("a value signed with the streamed key selects its lane at the edge; anything else is ignored and counted", async () => {
    const key = randomBytes(32);
    const { f } = await subscribed(key);
    expect(laneOf(f, signOverride(key, "canary", now() + 3600))).toBe("canary");
    expect(laneOf(f, signOverride(key, LONG, now() + 60))).toBe(LONG);
    expect(ignored(f)).toBe(0);

    const good = signOverride(key, "canary", now() + 3600);
    const bad = [
      "canary", // the plain lane name that `any` would take
      signOverride(randomBytes(32), "canary", now() + 3600), // another key
      signOverride(key, "canary", now() - 5), // expired
      good.replace(/^canary\./, "other."), // lane swapped, signature kept
      good.replace(/\.(\d+)\./, (_m, e) => `.${Number(e) + 1}.`), // expiry stretched
      good.slice(0, -1) + (good.endsWith("A") ? "B" : "A"), // one signature character changed
      good.slice(0, -1), // truncated
      good + "A",
      `${good}.extra`,
      signOverride(key, "nope", now() + 60), // signed, but no such lane
      "canary.99999999999.!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
      "",
    ];
    for (const v of bad) expect(laneOf(f, v), v).toBe("base");
    expect(ignored(f)).toBe(bad.length - 1); // the empty header is no override at all
    expect(f.vm.failed).toBe(false);
  });

  it("without the stream, a filter never has the key: the plugin config and the RuleSet do not carry it", async () => {
    const key = randomBytes(32);
    const parsed = parseLaneGroup(group());
    if (!parsed.ok) throw new Error("bad group");
    const compiled = compileRuleSet([parsed.value]);
    expect(Buffer.from(compiled.bytes).includes(key)).toBe(false);
    const f = await newFilter({ groups: [group()], edge: true });
    expect(laneOf(f, signOverride(key, "canary", now() + 3600))).toBe("base");
    expect(ignored(f)).toBe(1);
  });

  it("the key's fingerprint is part of the version, so a new key reaches filters that are up to date", async () => {
    const a = await subscribed(randomBytes(32));
    const b = await subscribed(randomBytes(32));
    const none = await subscribed(undefined);
    expect(new Set([a.version(), b.version(), none.version()]).size).toBe(3);
    expect(a.version().startsWith(none.version())).toBe(true);
  });
});

describe("the control-plane cluster in Istio", () => {
  it("an Istio cluster name (not a valid :authority) gets HOST:PORT as the gRPC authority; a plain name gets none", async () => {
    const seen: Array<{ cluster: string; authority: string }> = [];
    for (const cluster of ["outbound|7071||graylane-control-plane.graylane-system.svc.cluster.local", "graylane"]) {
      const f = await newFilter({ config: { cluster, node: { id: "n" } } });
      f.vm.tick();
      expect(f.vm.grpcStreams).toHaveLength(1);
      seen.push(parseGrpcService(f.vm.grpcStreams[0]!.serviceBytes)!);
    }
    expect(seen.map((s) => s.authority)).toEqual(["graylane-control-plane.graylane-system.svc.cluster.local:7071", ""]);
    expect(seen.map((s) => s.cluster)).toEqual(["outbound|7071||graylane-control-plane.graylane-system.svc.cluster.local", "graylane"]);
  });
});

describe("POST /v1/overrides/sign and `graylane override sign`", () => {
  it("signs with the control plane's key; refuses unknown lanes, long TTLs, and a control plane without a key", async () => {
    const key = randomBytes(32);
    const t = await TestServer.start({ overrideKey: { current: key } });
    cleanups.push(() => t.stop());
    await t.call("PUT", "/v1/lanegroups/mock", group());
    const r = await t.call("POST", "/v1/overrides/sign", { lane: "canary", ttl: "30m" });
    expect(r.status).toBe(200);
    const expiry = Number(r.body.value.split(".")[1]);
    expect(r.body.value).toBe(signOverride(key, "canary", expiry));
    expect(Math.abs(expiry - (now() + 1800))).toBeLessThanOrEqual(2);
    expect(r.body.groups).toEqual([{ name: "mock", overrideHeader: "x-asm-prefer-tag", overrideTrust: "signed" }]);
    expect((await t.call("POST", "/v1/overrides/sign", { lane: "nope" })).body.errors).toEqual([{ path: "/lane", message: "no lane group has a lane nope" }]);
    expect((await t.call("POST", "/v1/overrides/sign", { lane: "canary", ttl: "8d" })).body.errors[0].path).toBe("/ttl");

    let out = "";
    let err = "";
    const code = await main(["override", "sign", "--lane", "canary", "--ttl", "1h"], { out: (s) => { out += s; }, err: (s) => { err += s; }, env: { GRAYLANE_SERVER: t.url } });
    expect(code).toBe(0);
    const value = out.trim();
    expect(value).toBe(signOverride(key, "canary", Number(value.split(".")[1])));
    expect(err).toContain("send it as x-asm-prefer-tag: <value>");

    const plain = await TestServer.start();
    cleanups.push(() => plain.stop());
    await plain.call("PUT", "/v1/lanegroups/mock", group());
    const no = await plain.call("POST", "/v1/overrides/sign", { lane: "canary" });
    expect(no.status).toBe(409);
    expect(no.body.errors[0].message).toContain("--override-key-file");
  });
});
