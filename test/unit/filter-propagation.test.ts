// Lanes across a call chain (DESIGN.md scenario 3): gateway -> mocka -> mockb -> mockc, each sidecar
// a pair of filter VMs (inbound, outbound) sharing one trace memory, the apps simulated by copying
// only what a real app would forward.
import { describe, expect, it } from "vitest";
import { SharedData } from "../../control-plane/src/wasmhost/index.js";
import { base64, compileGroups, mockGroup, newFilter, routeTo, type Filter } from "../support/filter.js";

interface Sidecar { inbound: Filter; outbound: Filter }

async function sidecar(service: string, groups: unknown[]): Promise<Sidecar> {
  const shared = new SharedData();
  return {
    inbound: await newFilter({ groups, direction: "inbound", service, shared }),
    outbound: await newFilter({ groups, direction: "outbound", shared }),
  };
}

type Forward = "trace" | "lane" | "baggage";

/** What the app passes on to its next call, given the headers its inbound side delivered. */
function appForwards(delivered: Array<[string, string]>, mode: Forward): Record<string, string> {
  const get = (n: string) => delivered.find(([k]) => k === n)?.[1];
  const out: Record<string, string> = { "my-request-id": get("my-request-id")! };
  if (mode === "lane") out["x-graylane-lane"] = get("x-graylane-lane")!;
  if (mode === "baggage") out["baggage"] = get("baggage")!;
  return out;
}

async function chain(groups: unknown[], trace: string, edgeHeaders: Record<string, string>, mode: Forward) {
  const edge = await newFilter({ groups, edge: true });
  const a = await sidecar("mocka", groups);
  const b = await sidecar("mockb", groups);
  const c = await sidecar("mockc", groups);
  const hops: string[] = [];

  const atEdge = edge.exchange({ ":authority": "gateway.example.com", ":path": "/mock", "my-request-id": trace, ...edgeHeaders });
  hops.push(atEdge.requestHeader("x-graylane-route")!);
  let delivered = a.inbound.exchange(atEdge.requestHeaders).requestHeaders;
  for (const [from, to, next] of [[a, "mockb", b], [b, "mockc", c]] as const) {
    const out = from.outbound.exchange(appForwards(delivered, mode), 200, routeTo(to));
    hops.push(out.requestHeader("x-graylane-route")!);
    expect(out.requestHeader("x-graylane-lane")).toBe(atEdge.requestHeader("x-graylane-lane"));
    delivered = next.inbound.exchange(out.requestHeaders).requestHeaders;
  }
  return hops;
}

describe("lanes across a call chain", () => {
  for (const mode of ["trace", "lane", "baggage"] as const) {
    it(`canary at the edge runs mocka(v2) -> mockb(v1) -> mockc(v1), apps forwarding ${mode}`, async () => {
      const groups = [mockGroup()];
      expect(await chain(groups, `t-${mode}-1`, { "x-asm-prefer-tag": "canary" }, mode)).toEqual(["canary", "base", "base"]);
      expect(await chain(groups, `t-${mode}-2`, {}, mode)).toEqual(["base", "base", "base"]);
    });

    it(`the lane is carried on: once mockc has a canary the same request reaches it (${mode})`, async () => {
      const groups = [mockGroup({ lanes: [{ name: "canary", services: ["mocka", "mockc"] }] })];
      expect(await chain(groups, `t-${mode}-3`, { "x-asm-prefer-tag": "canary" }, mode)).toEqual(["canary", "base", "canary"]);
    });
  }

  it("trace memory is shared by every worker VM of one proxy and not across proxies", async () => {
    const groups = [mockGroup()];
    const shared = new SharedData();
    const inWorker1 = await newFilter({ groups, direction: "inbound", service: "mocka", shared });
    const outWorker2 = await newFilter({ groups, direction: "outbound", shared });
    const otherProxy = await newFilter({ groups, direction: "outbound" });
    inWorker1.exchange({ "x-asm-prefer-tag": "canary", "my-request-id": "t-workers" });
    expect(outWorker2.decide({ "my-request-id": "t-workers" }, routeTo("mockb")).lane).toBe("canary");
    expect(otherProxy.decide({ "my-request-id": "t-workers" }, routeTo("mockb")).lane).toBe("base");
  });

  it("trace memory forgets after its TTL", async () => {
    const groups = [mockGroup()];
    const shared = new SharedData();
    const { ManualClock } = await import("../../control-plane/src/wasmhost/index.js");
    const clock = new ManualClock(1_700_000_000_000_000_000n);
    const cfg = { traceMemory: { ttlSeconds: 5 } };
    const inbound = await newFilter({ groups, direction: "inbound", service: "mocka", shared, clock, config: cfg });
    const outbound = await newFilter({ groups, direction: "outbound", shared, clock, config: cfg });
    inbound.exchange({ "x-asm-prefer-tag": "canary", "my-request-id": "t-ttl" });
    clock.advanceMs(4000);
    expect(outbound.decide({ "my-request-id": "t-ttl" }, routeTo("mockb")).lane).toBe("canary");
    clock.advanceMs(2000);
    expect(outbound.decide({ "my-request-id": "t-ttl" }, routeTo("mockb")).lane).toBe("base");
  });

  it("W3C traceparent: the trace-id field is the key, whatever the parent span", async () => {
    const groups = [mockGroup({ traceHeader: "traceparent" })];
    const shared = new SharedData();
    const inbound = await newFilter({ groups, direction: "inbound", service: "mocka", shared });
    const outbound = await newFilter({ groups, direction: "outbound", shared });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    inbound.exchange({ "x-asm-prefer-tag": "canary", traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    expect(outbound.decide({ traceparent: `00-${traceId}-b7ad6b7169203331-01` }, routeTo("mockb")).lane).toBe("canary");
    expect(outbound.decide({ traceparent: "garbage" }, routeTo("mockb")).lane).toBe("base");
  });

  it("a new RuleSet applies to the next request", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mockc")).route).toBe("base");
    const next = compileGroups([mockGroup({ lanes: [{ name: "canary", services: ["mocka", "mockc"] }] })]);
    expect(f.vm.configure(JSON.stringify({ ruleSet: base64(next.bytes) }))).toBe(true);
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mockc")).route).toBe("canary");
  });
});

// A sidecar writes lane, route and baggage only where the request does not already carry exactly
// that value (each write is a host call); whatever it skips, the next hop must see the same headers.
describe("headers already carrying the decided values are not written again", () => {
  const writes = (f: Filter, headers: Record<string, string> | Array<[string, string]>, props: Record<string, unknown> = {}) => {
    f.vm.calls!.reset();
    const s = f.exchange(headers, 200, props);
    const n = f.vm.calls!.snapshot().proxy_on_request_headers?.host.proxy_replace_header_map_value ?? 0;
    return { n, lane: s.requestHeader("x-graylane-lane"), route: s.requestHeader("x-graylane-route"), baggage: s.requestHeader("baggage"), all: s.requestHeaders };
  };

  it("a propagated lane and baggage with the same values: only the route header is written", async () => {
    const f = await newFilter({ groups: [mockGroup()], direction: "outbound", countCalls: true });
    const r = writes(f, { ":authority": "mockb", ":path": "/", "x-graylane-lane": "canary", baggage: "tenant=acme,graylane=canary" }, routeTo("mockb"));
    expect(r).toMatchObject({ n: 1, lane: "canary", route: "base", baggage: "tenant=acme,graylane=canary" });
  });

  it("a different value, a second copy, or baggage spelled otherwise is written", async () => {
    const f = await newFilter({ groups: [mockGroup()], direction: "outbound", countCalls: true });
    // The override wins over the propagated lane: the lane header is rewritten.
    const over = writes(f, { ":authority": "mockb", ":path": "/", "x-asm-prefer-tag": "base", "x-graylane-lane": "canary", baggage: "graylane=base" }, routeTo("mockb"));
    expect(over).toMatchObject({ n: 2, lane: "base", baggage: "graylane=base" });
    // Two lane headers of the same value: replaced by one.
    const twice = writes(f, [[":authority", "mockb"], [":path", "/"], ["x-graylane-lane", "canary"], ["x-graylane-lane", "canary"], ["baggage", "graylane=canary"]], routeTo("mockb"));
    expect(twice.n).toBe(2);
    expect(twice.all.filter(([k]) => k === "x-graylane-lane")).toEqual([["x-graylane-lane", "canary"]]);
    // Baggage with the lane member but other spacing: normalised.
    const spaced = writes(f, { ":authority": "mockb", ":path": "/", "x-graylane-lane": "canary", baggage: "tenant=acme, graylane=canary" }, routeTo("mockb"));
    expect(spaced).toMatchObject({ n: 2, baggage: "tenant=acme,graylane=canary" });
  });

  it("at the edge every header is written after stripping, even one the request sent with the decided value", async () => {
    const f = await newFilter({ groups: [mockGroup()], edge: true, countCalls: true });
    const r = writes(f, { ":authority": "gateway.example.com", ":path": "/mock", "my-request-id": "edge-1", "x-asm-prefer-tag": "canary", "x-graylane-lane": "canary", "x-graylane-route": "canary", baggage: "graylane=canary" });
    expect(r).toMatchObject({ lane: "canary", route: "canary", baggage: "graylane=canary" });
    expect(r.n).toBe(3);
  });
});
