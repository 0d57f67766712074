// Every step of DESIGN.md's decision, and the priority between each pair of neighbouring steps,
// through the real filter.wasm.
import { describe, expect, it } from "vitest";
import { SharedData } from "../../control-plane/src/wasmhost/index.js";
import { base64, compileGroups, newFilter, routeTo, mockGroup } from "../support/filter.js";
import { decidedBy, shopGroup } from "../support/lanes.js";

const toWeb = routeTo("web");
const toApi = routeTo("api");
const toDb = routeTo("db");

describe("decision steps", () => {
  it("base when nothing applies: lane and route headers say base", async () => {
    const f = await newFilter({ groups: [shopGroup({ lanes: [] })] });
    let r!: ReturnType<typeof f.decide>;
    expect(decidedBy(f, () => { r = f.decide({ ":path": "/", "x-request-id": "t-base" }, toWeb); })).toBe("base/base");
    expect(r.lane).toBe("base");
    expect(r.route).toBe("base");
    expect(r.stream.requestHeader("baggage")).toBe("graylane=base");
  });

  it("override: a tester's header picks the lane regardless of rules and weights", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    let r!: ReturnType<typeof f.decide>;
    expect(decidedBy(f, () => { r = f.decide({ "x-lane-override": "dev", grayrelease: "version2" }, toDb); })).toBe("dev/override");
    expect(r.lane).toBe("dev");
    expect(r.route).toBe("dev");
  });

  it("override naming no lane is ignored, counted, and the decision goes on", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    expect(decidedBy(f, () => f.decide({ "x-lane-override": "nope", grayrelease: "version2" }, toWeb))).toBe("gray/rule");
    expect(f.vm.metric("graylane.override_ignored")?.value).toBe(1n);
  });

  it("overrides are off when the group names no override header", async () => {
    const f = await newFilter({ groups: [mockGroup({ overrideHeader: undefined })] });
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).lane).toBe("base");
  });

  it("override beats the propagated lane header", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    expect(decidedBy(f, () => f.decide({ "x-lane-override": "canary", "x-graylane-lane": "gray" }, toWeb))).toBe("canary/override");
  });

  it("propagated lane header, then baggage member", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    expect(decidedBy(f, () => f.decide({ "x-graylane-lane": "gray" }, toApi))).toBe("gray/header");
    let r!: ReturnType<typeof f.decide>;
    expect(decidedBy(f, () => { r = f.decide({ baggage: "userid=7, graylane=dev;ttl=5 , region=eu" }, toDb); })).toBe("dev/baggage");
    // other members kept, the lane member rewritten last
    expect(r.stream.requestHeader("baggage")).toBe("userid=7,region=eu,graylane=dev");
    // the lane header beats baggage
    expect(decidedBy(f, () => f.decide({ "x-graylane-lane": "gray", baggage: "graylane=dev" }, toApi))).toBe("gray/header");
  });

  it("an unknown propagated lane is ignored and counted", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    expect(decidedBy(f, () => f.decide({ "x-graylane-lane": "ghost" }, toApi))).toBe("base/base");
    expect(f.vm.metric("graylane.unknown_lane")?.value).toBe(1n);
  });

  it("propagated beats trace memory; trace memory beats rules (base included)", async () => {
    const shared = new SharedData();
    const inbound = await newFilter({ groups: [shopGroup()], direction: "inbound", service: "web", shared });
    const outbound = await newFilter({ groups: [shopGroup()], direction: "outbound", shared });
    // Inbound decides base for trace t-1 and remembers it.
    expect(decidedBy(inbound, () => inbound.decide({ "x-request-id": "t-1" }))).toBe("base/base");
    // A rule would say gray, but the trace is remembered as base.
    expect(decidedBy(outbound, () => outbound.decide({ "x-request-id": "t-1", grayrelease: "version2" }, toApi))).toBe("base/trace");
    // A propagated header beats the trace.
    expect(decidedBy(outbound, () => outbound.decide({ "x-request-id": "t-1", "x-graylane-lane": "gray" }, toApi))).toBe("gray/header");
  });

  it("rules beat weights, weights beat base", async () => {
    const f = await newFilter({ groups: [shopGroup({ lanes: [
      { name: "gray", services: ["web"], match: [{ headers: { grayrelease: { exact: "version2" } } }] },
      { name: "canary", services: ["web"], weight: 100 },
    ] })] });
    expect(decidedBy(f, () => f.decide({ grayrelease: "version2", "x-user-id": "u1" }, toWeb))).toBe("gray/rule");
    expect(decidedBy(f, () => f.decide({ "x-user-id": "u1" }, toWeb))).toBe("canary/weight");
  });

  it("rules are tried in lane order: the first matching lane wins", async () => {
    const f = await newFilter({ groups: [shopGroup({ lanes: [
      { name: "first", services: ["web"], match: [{ headers: { a: { present: true } } }] },
      { name: "second", services: ["web"], match: [{ headers: { a: { present: true }, b: { present: true } } }] },
    ] })] });
    expect(f.decide({ a: "1", b: "1" }, toWeb).lane).toBe("first");
  });

  it("a weight with no sticky key, no cookie and no trace id goes to base", async () => {
    const f = await newFilter({ groups: [shopGroup({ lanes: [{ name: "canary", services: ["web"], weight: 100 }] })] });
    expect(decidedBy(f, () => f.decide({}, toWeb))).toBe("base/base");
    // the trace id is the key of last resort
    expect(decidedBy(f, () => f.decide({ "x-request-id": "abc" }, toWeb))).toBe("canary/weight");
  });
});

describe("routes and fallback chains", () => {
  it("a lane routes to its own version where the service has one, else down its fallback chain to base", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    const dev = { "x-lane-override": "dev" };
    expect(f.decide(dev, toDb)).toMatchObject({ lane: "dev", route: "dev" });
    expect(f.decide(dev, toWeb)).toMatchObject({ lane: "dev", route: "canary" }); // dev -> canary has web
    expect(f.decide(dev, toApi)).toMatchObject({ lane: "dev", route: "gray" }); // dev -> canary -> gray has api
    const canary = { "x-lane-override": "canary" };
    expect(f.decide(canary, toDb)).toMatchObject({ lane: "canary", route: "base" }); // canary -> gray -> base
  });

  it("the lane header keeps the lane, not the route, so later hops can still reach it", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    const r = f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mockb"));
    expect(r).toMatchObject({ lane: "canary", route: "base" });
    expect(r.stream.requestHeader("baggage")).toBe("graylane=canary");
  });

  it("asks Envoy to route again (clear_route_cache) after writing the headers", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka"));
    expect(f.vm.foreignCalls.map((c) => c.name)).toEqual(["clear_route_cache"]);
  });

  it("skips re-routing when the matched route's graylane.lane metadata is already the decided route", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    const matched = (lane: string) => ({ ...routeTo("mocka"), "xds.route_metadata.filter_metadata.graylane.lane": lane });
    const calls = () => f.vm.foreignCalls.map((c) => c.name).length;
    // Base decided, base route matched: the same route again, no clear_route_cache; headers still written.
    let r = f.decide({ "my-request-id": "t-skip-1" }, matched("base"));
    expect(r.route).toBe("base");
    expect(r.stream.requestHeader("x-graylane-route")).toBe("base");
    expect(calls()).toBe(0);
    // Canary decided while the base route was matched: route again.
    r = f.decide({ "x-asm-prefer-tag": "canary" }, matched("base"));
    expect(r.route).toBe("canary");
    expect(calls()).toBe(1);
    // A smuggled or stale route header had matched the canary route, the decision is base: route again.
    f.decide({ "my-request-id": "t-skip-2" }, matched("canary"));
    expect(calls()).toBe(2);
    // Canary decided and the canary route matched: nothing to redo.
    f.decide({ "x-asm-prefer-tag": "canary" }, matched("canary"));
    expect(calls()).toBe(2);
  });
});

describe("destination", () => {
  it("route metadata first, then the :authority host without port (any case)", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    const canary = { "x-lane-override": "canary" };
    // metadata says api although the authority says web
    expect(f.decide({ ...canary, ":authority": "web" }, toApi).route).toBe("gray");
    expect(f.decide({ ...canary, ":authority": "WEB.shop.svc.cluster.local:8080" }).route).toBe("canary");
    expect(f.decide({ ...canary, ":authority": "api:80" }).route).toBe("gray");
  });

  it("paths prefixes count at the edge only", async () => {
    const edge = await newFilter({ groups: [shopGroup()], edge: true });
    expect(edge.decide({ "x-lane-override": "canary", ":authority": "shop.example.com", ":path": "/shop/cart?x=1" }).route).toBe("canary");
    const sidecar = await newFilter({ groups: [shopGroup()] });
    const r = sidecar.decide({ "x-lane-override": "canary", ":authority": "shop.example.com", ":path": "/shop/cart" });
    expect(r.route).toBeUndefined();
  });

  it("a request with no destination in any group passes untouched, minus any incoming route header", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    const s = f.exchange({ ":authority": "elsewhere", ":path": "/", "x-graylane-route": "canary", "x-graylane-lane": "gray", baggage: "graylane=gray" });
    expect(s.requestHeader("x-graylane-route")).toBeUndefined();
    expect(s.requestHeader("x-graylane-lane")).toBe("gray");
    expect(s.requestHeader("baggage")).toBe("graylane=gray");
    expect(f.vm.foreignCalls).toHaveLength(0);
    expect(f.vm.metric("graylane.no_destination")?.value).toBe(1n);
  });

  it("inbound with no local group: an incoming route header is removed there too", async () => {
    const f = await newFilter({ groups: [shopGroup()], direction: "inbound", service: "not-in-any-group" });
    const s = f.exchange({ ":authority": "x", ":path": "/", "x-graylane-route": "canary" });
    expect(s.requestHeader("x-graylane-route")).toBeUndefined();
    expect(f.vm.metric("graylane.no_destination")?.value).toBe(1n);
  });

  it("inbound: when a new RuleSet drops the local service, requests have no destination (no stale indices)", async () => {
    const f = await newFilter({ groups: [mockGroup()], direction: "inbound", service: "mockb" });
    expect(f.exchange({ "x-asm-prefer-tag": "canary" }).requestHeader("x-graylane-lane")).toBe("canary");
    // The same filter gets a RuleSet in which mockb is in no group (a one-service group instead).
    const other = { name: "other", services: [{ name: "elsewhere" }] };
    expect(f.vm.configure(JSON.stringify({ service: "mockb", ruleSet: base64(compileGroups([other]).bytes) }))).toBe(true);
    const s = f.exchange({ "x-asm-prefer-tag": "canary", "x-graylane-lane": "canary" });
    expect(s.requestHeader("x-graylane-lane")).toBe("canary"); // untouched: no decision here
    expect(f.vm.metric("graylane.no_destination")?.value).toBe(1n);
    expect(f.vm.failed).toBe(false);
  });

  it("an edge without any RuleSet yet still strips lane, route and baggage lane from outsiders", async () => {
    const f = await newFilter({ edge: true });
    const s = f.exchange([[":authority", "mocka"], [":path", "/mock"], ["x-graylane-route", "canary"], ["x-graylane-lane", "canary"],
      ["x-graylane-lane", "canary2"], ["baggage", "a=1,graylane=canary,b=2"]]);
    expect(s.requestHeader("x-graylane-route")).toBeUndefined();
    expect(s.requestHeader("x-graylane-lane")).toBeUndefined();
    expect(s.requestHeader("baggage")).toBe("a=1,b=2");
    const sidecar = await newFilter({});
    expect(sidecar.exchange({ ":authority": "mocka", "x-graylane-lane": "canary" }).requestHeader("x-graylane-lane")).toBe("canary");
  });

  it("inbound: the local service is the destination; lane header written, no route header", async () => {
    const f = await newFilter({ groups: [mockGroup()], direction: "inbound", service: "mockb" });
    const s = f.exchange({ "x-asm-prefer-tag": "canary", "my-request-id": "in-1" });
    expect(s.requestHeader("x-graylane-lane")).toBe("canary");
    expect(s.requestHeader("x-graylane-route")).toBeUndefined();
    expect(f.vm.foreignCalls).toHaveLength(0);
  });
});

describe("edge", () => {
  it("removes untrusted incoming lane header, route header and baggage member before deciding", async () => {
    const f = await newFilter({ groups: [mockGroup()], edge: true });
    const s = f.exchange({ ":authority": "mocka", "x-graylane-lane": "canary", "x-graylane-route": "canary", baggage: "a=1,graylane=canary" });
    expect(s.requestHeader("x-graylane-lane")).toBe("base");
    expect(s.requestHeader("x-graylane-route")).toBe("base");
    expect(s.requestHeader("baggage")).toBe("a=1,graylane=base");
  });

  it("also when the request matches no group", async () => {
    const f = await newFilter({ groups: [mockGroup()], edge: true });
    const s = f.exchange({ ":authority": "other.example.com", ":path": "/x", "x-graylane-lane": "canary", "x-graylane-route": "canary", baggage: "graylane=canary,b=2" });
    expect(s.requestHeader("x-graylane-lane")).toBeUndefined();
    expect(s.requestHeader("x-graylane-route")).toBeUndefined();
    expect(s.requestHeader("baggage")).toBe("b=2");
  });

  it("keeps them when the group trusts incoming headers", async () => {
    const f = await newFilter({ groups: [mockGroup({ trustIncoming: true })], edge: true });
    expect(f.decide({ ":authority": "mocka", "x-graylane-lane": "canary" }).lane).toBe("canary");
  });

  it("a lane header that is also the override header is the override", async () => {
    const f = await newFilter({ groups: [mockGroup({ laneHeader: "x-asm-prefer-tag" })], edge: true });
    expect(decidedBy(f, () => f.decide({ ":authority": "mocka", "x-asm-prefer-tag": "canary" }, {}, "x-asm-prefer-tag"))).toBe("canary/override");
  });

  it("overrideTrust internal: ignored at the edge, honoured inside the mesh", async () => {
    const group = mockGroup({ overrideTrust: "internal" });
    const edge = await newFilter({ groups: [group], edge: true });
    expect(edge.decide({ ":authority": "mocka", "x-asm-prefer-tag": "canary" }).lane).toBe("base");
    expect(edge.vm.metric("graylane.override_ignored")?.value).toBe(1n);
    const sidecar = await newFilter({ groups: [group] });
    expect(sidecar.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).lane).toBe("canary");
  });
});
