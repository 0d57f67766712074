// Test support: the real filter.wasm in the Node proxy-wasm host, driven like a sidecar or gateway.
import { loadFilterModule, ManualClock, SharedData, WasmVm } from "../../control-plane/src/wasmhost/index.js";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup } from "../../control-plane/src/model/lanegroup.js";

export const WASM_PATH = "filter/build/filter.wasm";

let modulePromise: ReturnType<typeof loadFilterModule> | undefined;
export function filterModule(): ReturnType<typeof loadFilterModule> {
  modulePromise ??= loadFilterModule(WASM_PATH);
  return modulePromise;
}

/** Lane group JSON (DESIGN.md shape) → RuleSet bytes, through the real model and compiler. */
export function compileGroups(groups: unknown[]): { bytes: Uint8Array; version: string } {
  const parsed = groups.map((g) => {
    const r = parseLaneGroup(g);
    if (!r.ok) throw new Error("invalid lane group: " + JSON.stringify(r.errors));
    return r.value;
  });
  const { bytes, version } = compileRuleSet(parsed);
  return { bytes, version };
}

export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

export type Direction = "inbound" | "outbound";

export interface FilterOptions {
  groups?: unknown[];
  /** Extra plugin configuration keys. */
  config?: Record<string, unknown>;
  /** Listener direction the host reports (xds.listener_direction); ignored at the edge. */
  direction?: Direction;
  edge?: boolean;
  /** Local service (inbound side). */
  service?: string;
  shared?: SharedData;
  clock?: ManualClock;
  grpc?: ConstructorParameters<typeof Object>[0];
  /** Count host calls and hook crossings (vm.calls). */
  countCalls?: boolean;
  /** More VM-level properties (e.g. "node.metadata.LABELS": {...}), read at configure. */
  properties?: Record<string, unknown>;
}

export type Headers = Array<[string, string | Uint8Array]> | Record<string, string>;

export class Filter {
  constructor(public vm: WasmVm, public direction: Direction) {}

  /** One request through on_request_headers; returns the stream (not completed). */
  send(headers: Headers, properties: Record<string, unknown> = {}) {
    const s = this.vm.newHttpStream({ properties: properties as never });
    s.callOnRequestHeaders(headers);
    return s;
  }

  /** A whole exchange: request headers, response headers with `status`, then done/log/delete. */
  exchange(headers: Headers, status = 200, properties: Record<string, unknown> = {}) {
    const s = this.send(headers, properties);
    s.callOnResponseHeaders([[":status", String(status)]]);
    s.complete();
    return s;
  }

  /** The lane and route headers the filter wrote. */
  decide(headers: Headers, properties: Record<string, unknown> = {}, laneHeader = "x-graylane-lane", routeHeader = "x-graylane-route") {
    const s = this.exchange(headers, 200, properties);
    return { lane: s.requestHeader(laneHeader), route: s.requestHeader(routeHeader), stream: s };
  }
}

export async function newFilter(opts: FilterOptions = {}): Promise<Filter> {
  const mod = await filterModule();
  const direction = opts.direction ?? "outbound";
  const vm = await WasmVm.create(mod, {
    shared: opts.shared ?? new SharedData(),
    clock: opts.clock ?? new ManualClock(1_700_000_000_000_000_000n),
    vmId: "graylane",
    properties: { "xds.listener_direction": direction === "inbound" ? 1 : 2, ...(opts.properties ?? {}) } as never,
    foreignFunctions: { clear_route_cache: () => new Uint8Array() },
    grpc: opts.grpc as never,
    countCalls: opts.countCalls,
  });
  const config: Record<string, unknown> = { ...(opts.config ?? {}) };
  if (opts.groups) config.ruleSet = base64(compileGroups(opts.groups).bytes);
  if (opts.edge) config.edge = true;
  if (opts.service) config.service = opts.service;
  if (!vm.configure(JSON.stringify(config))) {
    throw new Error("filter refused its configuration: " + vm.logs.map((l) => l.message).join("\n"));
  }
  return new Filter(vm, direction);
}

/** DESIGN.md's example group, as demo/ and the README use it. */
export function mockGroup(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "mock",
    services: [
      { name: "mocka", hosts: ["mocka", "mocka.default.svc.cluster.local"], paths: ["/mock"] },
      { name: "mockb" },
      { name: "mockc" },
    ],
    baseLane: "base",
    overrideHeader: "x-asm-prefer-tag",
    traceHeader: "my-request-id",
    stickyKey: { header: "x-user-id" },
    lanes: [
      { name: "canary", services: ["mocka"], fallback: "base", match: [{ headers: { grayrelease: { exact: "version2" } } }] },
    ],
    ...overrides,
  };
}

/** Route metadata property naming the destination service, as generated Envoy routes carry it. */
export function routeTo(service: string): Record<string, unknown> {
  return { "xds.route_metadata.filter_metadata.graylane.service": service };
}
