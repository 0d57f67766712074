// Host calls and hook crossings per request, pinned: in Envoy each costs more than most of the
// filter's own work (calls that return data also call back into the module to allocate), so a
// change that adds one must fail here and be argued for. Counted by the Node host (VmOptions
// countCalls) over warm requests, per request, for each path a request can take.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { callTotals, type HookCalls } from "../../control-plane/src/wasmhost/index.js";
import { type FilterOptions, mockGroup, newFilter, routeTo } from "../support/filter.js";

type PerHook = Record<string, { host: Record<string, number>; intoModule: Record<string, number> }>;

const N = 10;

/** Calls per request of `N` warm exchanges (after warm-up, so pools and indices are built). */
async function perRequest(opts: FilterOptions, headers: Record<string, string>, props: Record<string, unknown> = {}, traceId = true) {
  const f = await newFilter({ groups: [mockGroup()], ...opts, countCalls: true });
  const send = (tag: string) => f.exchange(traceId ? { ...headers, "my-request-id": `${tag}-${Math.random()}` } : headers, 200, props);
  for (let i = 0; i < 20; i++) send("warm");
  f.vm.calls!.reset();
  for (let i = 0; i < N; i++) send("counted");
  const snap = f.vm.calls!.snapshot();
  const per = (r: Record<string, number>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v / N]));
  const hooks: PerHook = {};
  for (const [hook, h] of Object.entries(snap) as Array<[string, HookCalls]>) {
    expect(h.invocations, hook).toBe(N);
    hooks[hook] = { host: per(h.host), intoModule: per(h.intoModule) };
  }
  const t = callTotals(snap);
  return { hooks, totals: { hooks: t.hooks / N, host: t.host / N, intoModule: t.intoModule / N } };
}

// The pins per path (test/fixtures/host-calls.json): bench/support/peers.ts builds the C peer of
// bench/envoy-overhead from the same file, so the peer follows every change made here.
const PINS = JSON.parse(readFileSync(new URL("../fixtures/host-calls.json", import.meta.url), "utf8")) as Record<string, { hooks: PerHook; totals: unknown }>;
const pinned = (path: string) => ({ hooks: PINS[path].hooks, totals: PINS[path].totals });

describe("host calls per request", () => {
  it("outbound sidecar, a propagated lane, route metadata naming the service: the pinned calls", async () => {
    const r = await perRequest({ direction: "outbound" }, { ":method": "GET", ":path": "/", ":authority": "mockb", "x-graylane-lane": "canary" }, routeTo("mockb"));
    expect(r).toEqual(pinned("outbound"));
  });

  it("inbound sidecar: the trace memory written, no re-routing: the pinned calls", async () => {
    const r = await perRequest({ direction: "inbound", service: "mockb" }, { ":method": "GET", ":path": "/", ":authority": "mockb", "x-graylane-lane": "canary" });
    expect(r).toEqual(pinned("inbound"));
  });

  it("edge, an override: the pinned calls (no listener direction read at the edge)", async () => {
    const r = await perRequest({ edge: true }, { ":method": "GET", ":path": "/mock", ":authority": "gw", "x-asm-prefer-tag": "canary" });
    expect(r).toEqual(pinned("edge"));
  });

  it("a request of no group: the pinned calls, nothing on the response side", async () => {
    const r = await perRequest({ direction: "outbound" }, { ":method": "GET", ":path": "/", ":authority": "elsewhere" });
    expect(r).toEqual(pinned("noGroup"));
  });

  it("edge, a request without a trace header: one header write more, for the trace id the gateway makes", async () => {
    const r = await perRequest({ edge: true }, { ":method": "GET", ":path": "/mock", ":authority": "gw", "x-asm-prefer-tag": "canary" }, {}, false);
    expect(r.hooks.proxy_on_request_headers.host).toEqual({
      proxy_get_current_time_nanoseconds: 1, proxy_get_header_map_pairs: 1, proxy_get_property: 1,
      proxy_replace_header_map_value: 4, proxy_call_foreign_function: 1, proxy_increment_metric: 2, // + graylane.trace_generated
    });
    expect(r.totals).toEqual({ hooks: 5, host: 12, intoModule: 2 });
  });

  it("strict group, the instance lane (node metadata LABELS) decides: the host calls of a propagated lane plus the trace lookup; LABELS never read per request", async () => {
    const lanes = [{ name: "canary", services: ["mocka", "mockb"] }];
    const opts: FilterOptions = { direction: "outbound", groups: [mockGroup({ isolation: "strict", lanes })], properties: { "node.metadata.LABELS": { app: "mocka", "graylane.io/lane": "canary" } } };
    const strict = await perRequest(opts, { ":method": "GET", ":path": "/", ":authority": "mockb" }, routeTo("mockb"));
    const permissive = await perRequest({ ...opts, groups: [mockGroup({ lanes })] }, { ":method": "GET", ":path": "/", ":authority": "mockb" }, routeTo("mockb"));
    expect(strict.hooks.proxy_on_request_headers.host).toEqual({
      proxy_get_current_time_nanoseconds: 1, proxy_get_header_map_pairs: 1,
      proxy_get_property: 2, // xds.listener_direction, the route's graylane metadata: not LABELS
      proxy_get_shared_data: 1, // trace memory, step 3, before the instance
      proxy_replace_header_map_value: 3, proxy_call_foreign_function: 1, proxy_increment_metric: 1,
    });
    // The same calls as a permissive group's request that ends at base.
    expect(strict.hooks).toEqual(permissive.hooks);
    expect(strict.totals).toEqual({ hooks: 5, host: 12, intoModule: 4 });
  });
});
