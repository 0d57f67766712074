// Host calls, hooks and calls back into the module per request, counted by the Node host
// (control-plane/src/wasmhost, VmOptions.countCalls) on the bench's own requests: for Graylane on
// each path bench/envoy-overhead measures, and for each C peer on the same requests. What Envoy
// would call is the same: the host decides nothing here but what the module asks for.
import { readFileSync } from "node:fs";
import { callTotals } from "../../control-plane/src/wasmhost/index.js";
import type { PeerBuild } from "./peers.js";
import { benchRequest, noGroupRequest } from "./ruleset.js";
import { benchVm } from "./vm.js";

export interface CallsPerRequest { host: number; hooks: number; intoModule: number; byName: Record<string, number> }

const N = 1000;

async function counted(wasm: Uint8Array, config: string, inbound: boolean, noGroup: boolean): Promise<CallsPerRequest> {
  const vm = await benchVm(wasm, config, { inbound, countCalls: true });
  const once = (i: number) => {
    const req = noGroup ? noGroupRequest(i) : benchRequest(i);
    const service = req.find(([k]) => k === ":authority")![1].split(".")[0];
    // Envoy's route metadata on the outbound side: the default route of the host's service (none for other hosts).
    const properties = noGroup || inbound ? {} : { "xds.route_metadata.filter_metadata.graylane.service": service, "xds.route_metadata.filter_metadata.graylane.lane": "base" };
    const s = vm.newHttpStream({ properties: properties as never });
    s.callOnRequestHeaders(req);
    s.callOnResponseHeaders([[":status", "200"]]);
    s.complete();
  };
  for (let i = 0; i < 100; i++) once(i + N);
  vm.calls!.reset();
  for (let i = 0; i < N; i++) once(i);
  const snap = vm.calls!.snapshot();
  const t = callTotals(snap);
  const byName: Record<string, number> = {};
  for (const h of Object.values(snap)) for (const [k, v] of Object.entries({ ...h.host, ...h.intoModule })) byName[k] = (byName[k] ?? 0) + v / N;
  return { host: t.host / N, hooks: t.hooks / N, intoModule: t.intoModule / N, byName };
}

/** Per request on the bench traffic: Graylane outbound, inbound and of no group, then each peer on its path. */
export async function countCallsPerRequest(graylane: string, pluginConfig: string, peers: Map<PeerBuild, string>, compare?: string): Promise<Record<string, CallsPerRequest>> {
  const gl = readFileSync(graylane);
  const out: Record<string, CallsPerRequest> = {
    "b (Graylane, outbound)": await counted(gl, pluginConfig, false, false),
    "b-inbound (Graylane, inbound)": await counted(gl, pluginConfig, true, false),
    "b, no group": await counted(gl, pluginConfig, false, true),
  };
  if (compare) {
    const old = readFileSync(compare);
    out["b-compare (outbound)"] = await counted(old, pluginConfig, false, false);
    out["b-compare-inbound"] = await counted(old, pluginConfig, true, false);
    out["b-compare, no group"] = await counted(old, pluginConfig, false, true);
  }
  const path: Record<PeerBuild, [boolean, boolean]> = { "out-min": [false, false], "out-calls": [false, false], "in-min": [true, false], "in-calls": [true, false], "nogroup": [false, true] };
  for (const [build, file] of peers) out[`peer ${build}`] = await counted(readFileSync(file), "{}", ...path[build]);
  return out;
}
