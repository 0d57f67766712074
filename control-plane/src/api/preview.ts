// POST /v1/preview: what the real filter.wasm decides at the edge for one request, so the answer can
// never drift from what a gateway does (one implementation of the decision, DESIGN.md).
//
// A fresh VM per call (about 2 ms): its trace memory (shared data) and counters start empty, so the
// counter that moved names the decision's source, and no earlier preview can influence this one.
// The module is compiled once; the RuleSet bytes are cached per (group, revision).
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { compileRuleSet } from "../compile/index.js";
import type { LaneGroup } from "../model/lanegroup.js";
import type { StoredGroup } from "../store/types.js";
import { loadFilterModule, ManualClock, SharedData, WasmVm, type FilterModule } from "../wasmhost/index.js";
import { fail } from "./errors.js";

export const DEFAULT_WASM_PATH = fileURLToPath(new URL("../../../filter/build/filter.wasm", import.meta.url));

export interface PreviewRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

export interface PreviewResult {
  lane: string | null;
  route: string | null;
  /** override | header | baggage | trace | rule | weight | base */
  source: string | null;
  /** The group revision the decision was made with. */
  revision: number;
}

const SOURCE_METRIC = /^graylane\.group\.([^.]+)\.lane\.([^.]+)\.source\.([^.]+)\.requests$/;
const CACHE_SIZE = 64;

export class Previewer {
  private module: Promise<FilterModule> | undefined;
  private readonly rulesets = new Map<string, string>();

  constructor(readonly wasmPath: string = DEFAULT_WASM_PATH) {}

  async preview(stored: StoredGroup, service: string, request: PreviewRequest): Promise<PreviewResult> {
    const g = stored.lanegroup;
    const svc = g.services.find((s) => s.name === service);
    if (!svc) throw fail(400, `service ${service} is not a service of lane group ${g.name} (${g.services.map((s) => s.name).join(", ")})`, "/service");

    const vm = await WasmVm.create(await this.load(), {
      shared: new SharedData(), // empty trace memory
      clock: new ManualClock(BigInt(Date.now()) * 1_000_000n),
      vmId: "graylane",
      properties: { "xds.listener_direction": 2 },
      foreignFunctions: { clear_route_cache: () => new Uint8Array() },
      logLevel: 3, // warnings and up: previews should not fill memory with trace logs
    });
    const config = { edge: true, ruleSet: this.ruleset(stored) };
    if (!vm.configure(JSON.stringify(config))) {
      throw fail(500, "the filter refused the compiled rules: " + vm.logs.map((l) => l.message).join("; "));
    }

    const headers: Array<[string, string]> = [
      [":method", request.method.toUpperCase()],
      [":path", request.path],
      [":scheme", "http"],
    ];
    const given = Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
    if (!given.some(([k]) => k === ":authority")) headers.push([":authority", svc.hosts[0] ?? svc.name]);
    headers.push(...given.filter(([k]) => k !== ":method" && k !== ":path"));

    // Generated gateway routes name their service in route metadata; do the same so the
    // destination is the requested service whatever :authority says.
    const s = vm.newHttpStream({ properties: { "xds.route_metadata.filter_metadata.graylane.service": service } });
    s.callOnRequestHeaders(headers);
    const lane = s.requestHeader(g.laneHeader.toLowerCase()) ?? null;
    const route = s.requestHeader(g.routeHeader.toLowerCase()) ?? null;
    s.callOnResponseHeaders([[":status", "200"]]);
    s.complete();

    let source: string | null = null;
    for (const [name, m] of vm.metrics) {
      const hit = SOURCE_METRIC.exec(name);
      if (hit && hit[1] === g.name && m.value > 0n) source = hit[3];
    }
    vm.shutdown();
    return { lane, route, source, revision: stored.revision };
  }

  private load(): Promise<FilterModule> {
    if (!this.module) {
      if (!existsSync(this.wasmPath)) throw fail(503, `preview unavailable: ${this.wasmPath} not found (run make build)`);
      this.module = loadFilterModule(this.wasmPath);
      this.module.catch(() => { this.module = undefined; });
    }
    return this.module;
  }

  private ruleset(stored: StoredGroup): string {
    const key = `${stored.name}@${stored.revision}`;
    let b64 = this.rulesets.get(key);
    if (b64 === undefined) {
      b64 = Buffer.from(compileRuleSet([stored.lanegroup as LaneGroup]).bytes).toString("base64");
      if (this.rulesets.size >= CACHE_SIZE) this.rulesets.delete(this.rulesets.keys().next().value!);
      this.rulesets.set(key, b64);
    }
    return b64;
  }
}
