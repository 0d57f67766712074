// bench/filter-memory: the filter's linear memory per VM at rest and after 1,000,000 requests with
// distinct trace ids, in the Node proxy-wasm host (control-plane/src/wasmhost) running the release
// filter.wasm with the realistic RuleSet; the ratio is against its own memory at rest.
// One VM plays a sidecar: even requests inbound (decide, write trace memory), odd ones outbound
// (route metadata names the destination; trace memory lookup), 5 groups' hosts, ~18 headers each.
// Trace memory (65,536 slots) lives in proxy-wide shared data, outside linear memory; its size is
// reported too.
import { loadFilterModule, ManualClock, SharedData, WasmVm } from "../control-plane/src/wasmhost/index.js";
import { isMain, QUICK, writeResult } from "./support/common.js";
import { benchRequest, benchRuleSet, GROUPS } from "./support/ruleset.js";

export interface MemoryOptions { requests: number; checkpoints: number[]; log?: (line: string) => void }

export const DEFAULTS: MemoryOptions = QUICK
  ? { requests: 20_000, checkpoints: [1_000, 10_000] }
  : { requests: 1_000_000, checkpoints: [1_000, 10_000, 100_000] };

const WASM = "filter/build/filter.wasm";
const SLOTS = 65_536;

async function newVm(path: string, shared: SharedData, config: string, clock: ManualClock): Promise<WasmVm> {
  const vm = await WasmVm.create(await loadFilterModule(path), {
    shared, clock, vmId: "graylane",
    properties: { "xds.listener_direction": 1 }, foreignFunctions: { clear_route_cache: () => new Uint8Array() },
  });
  if (!vm.configure(config)) throw new Error(`${path} refused its configuration: ${vm.logs.map((l) => l.message).join("\n")}`);
  return vm;
}

export async function runFilterMemory(opts: MemoryOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const rs = benchRuleSet();
  const shared = new SharedData();
  const clock = new ManualClock(1_700_000_000_000_000_000n);
  const vm = await newVm(WASM, shared, JSON.stringify({ ruleSet: rs.base64, service: "shop0-web", traceMemory: { slots: SLOTS, ttlSeconds: 60 } }), clock);
  const atRest = vm.memoryBytes();
  const inbound = { "xds.listener_direction": 1 };
  const outbound = Array.from({ length: GROUPS }, (_, g) => ({ "xds.listener_direction": 2, "xds.route_metadata.filter_metadata.graylane.service": `shop${g}-web` }));
  const checkpoints: Array<{ requests: number; linearMemoryBytes: number; traceMemoryKeys: number }> = [];
  const t0 = performance.now();
  let lanes = 0;
  for (let i = 0; i < opts.requests; i++) {
    const headers = benchRequest(i);
    headers[8] = ["x-request-id", `mem-${i}-${(i * 2654435761) >>> 0}`]; // distinct trace ids
    const s = vm.newHttpStream({ properties: (i % 2 === 0 ? inbound : outbound[i % GROUPS]) as never });
    s.callOnRequestHeaders(headers);
    if (s.requestHeader("x-graylane-lane")) lanes++;
    s.callOnResponseHeaders([[":status", i % 100 === 0 ? "503" : "200"]]);
    s.complete();
    if (i % 1000 === 999) clock.advanceMs(1); // 1 ms per 1,000 requests: TTLs never expire entries here
    if (opts.checkpoints.includes(i + 1)) {
      checkpoints.push({ requests: i + 1, linearMemoryBytes: vm.memoryBytes(), traceMemoryKeys: shared.keyCount("graylane") });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  if (vm.failed) throw new Error("the filter VM failed");
  if (lanes !== opts.requests) throw new Error(`only ${lanes} of ${opts.requests} requests got a lane`);
  const after = vm.memoryBytes();
  let sharedBytes = 0;
  const keys = shared.keys("graylane");
  for (const k of keys) sharedBytes += k.length + (shared.get(k, "graylane")?.value.length ?? 0);
  checkpoints.push({ requests: opts.requests, linearMemoryBytes: after, traceMemoryKeys: keys.length });
  log(`filter-memory: linear memory ${atRest} B at rest → ${after} B after ${opts.requests} requests (×${(after / atRest).toFixed(2)}); trace memory ${keys.length} keys, ${sharedBytes} B of shared data`);
  return {
    setup: {
      host: "control-plane/src/wasmhost (Node, V8) running filter/build/filter.wasm; one VM, requests alternately inbound (trace memory written) and outbound (trace memory read)",
      ruleSet: { groups: rs.ruleSet.groups.length, conditions: rs.conditions, regexDfas: rs.regexes, bytes: rs.bytes.length },
      traceMemorySlots: SLOTS, requests: opts.requests, seconds: Number(seconds.toFixed(1)),
    },
    linearMemory: {
      atRestBytes: atRest,
      afterBytes: after,
      ratioAfterToRest: Number((after / atRest).toFixed(3)),
      checkpoints,
    },
    traceMemory: { keys: keys.length, slots: SLOTS, sharedDataBytes: sharedBytes },
    flat: checkpoints.every((c) => c.linearMemoryBytes <= after) && after === checkpoints.find((c) => c.requests >= 10_000)?.linearMemoryBytes,
  };
}

if (isMain(import.meta.url)) {
  runFilterMemory().then((r) => {
    console.log(`  wrote ${writeResult("filter-memory", r)}`);
  }).catch((e) => { console.error(e); process.exit(1); });
}
