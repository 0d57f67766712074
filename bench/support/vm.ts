// A filter module in the Node wasm host as the benchmarks run it: its own shared data, a fixed
// clock, one listener direction, clear_route_cache answered; optionally counting host calls.
import { loadFilterModule, ManualClock, SharedData, WasmVm } from "../../control-plane/src/wasmhost/index.js";

export async function benchVm(source: string | Uint8Array, config: string, opts: { inbound?: boolean; countCalls?: boolean } = {}): Promise<WasmVm> {
  const vm = await WasmVm.create(await loadFilterModule(source), {
    shared: new SharedData(), clock: new ManualClock(1_700_000_000_000_000_000n), vmId: "graylane",
    properties: { "xds.listener_direction": opts.inbound ? 1 : 2 }, foreignFunctions: { clear_route_cache: () => new Uint8Array() },
    countCalls: opts.countCalls ?? false,
  });
  if (!vm.configure(config)) throw new Error(`${typeof source === "string" ? source : "the module"} refused its configuration`);
  return vm;
}
