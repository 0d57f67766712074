// `make demo` until the real-Envoy demo lands: the lane scenario of DESIGN.md with the real
// filter.wasm, run in the Node proxy-wasm host — a gateway and one sidecar (inbound + outbound VMs
// sharing trace memory) per service of mocka -> mockb -> mockc, apps forwarding only my-request-id.
import { readFileSync } from "node:fs";
import { compileRuleSet } from "../control-plane/src/compile/index.js";
import { parseLaneGroup } from "../control-plane/src/model/lanegroup.js";
import { loadFilterModule, SharedData, WasmVm } from "../control-plane/src/wasmhost/index.js";

const file = process.argv[2] ?? "demo/lanegroup.json";
const parsed = parseLaneGroup(JSON.parse(readFileSync(file, "utf8")));
if (!parsed.ok) {
  for (const e of parsed.errors) console.error(`${file}${e.path}: ${e.message}`);
  process.exit(1);
}
const group = parsed.value;
const { bytes, version } = compileRuleSet([group]);
const mod = await loadFilterModule("filter/build/filter.wasm");

async function vm(config: Record<string, unknown>, direction: number, shared = new SharedData()) {
  const v = await WasmVm.create(mod, {
    shared, vmId: "graylane", properties: { "xds.listener_direction": direction },
    foreignFunctions: { clear_route_cache: () => new Uint8Array() },
  });
  if (!v.configure(JSON.stringify({ ...config, ruleSet: Buffer.from(bytes).toString("base64") }))) {
    throw new Error(v.logs.map((l) => l.message).join("\n"));
  }
  return v;
}

const services = group.services.map((s) => s.name);
const gateway = await vm({ edge: true }, 2);
const sidecars = await Promise.all(services.map(async (name) => {
  const shared = new SharedData();
  return { name, inbound: await vm({ service: name }, 1, shared), outbound: await vm({}, 2, shared) };
}));

let traces = 10000;
function call(headers: Record<string, string>): string {
  const trace = String(traces++);
  const edge = gateway.newHttpStream();
  edge.callOnRequestHeaders({ ":method": "GET", ":authority": "127.0.0.1:8080", ":path": "/mock", "my-request-id": trace, ...headers });
  let delivered = edge.requestHeaders;
  const hops = [`${services[0]}(${edge.requestHeader(group.routeHeader)})`];
  edge.complete();
  for (let i = 0; i < sidecars.length; i++) {
    const inbound = sidecars[i].inbound.newHttpStream();
    inbound.callOnRequestHeaders(delivered);
    inbound.complete();
    if (i + 1 === sidecars.length) break;
    // the app forwards only its trace header
    const out = sidecars[i].outbound.newHttpStream({ properties: { "xds.route_metadata.filter_metadata.graylane.service": services[i + 1] } });
    out.callOnRequestHeaders({ ":method": "GET", ":authority": services[i + 1], ":path": "/mock", "my-request-id": trace });
    hops.push(`${services[i + 1]}(${out.requestHeader(group.routeHeader)})`);
    delivered = out.requestHeaders;
    out.complete();
  }
  return hops.join(" -> ");
}

console.log(`Graylane demo (filter.wasm in the Node proxy-wasm host; the real-Envoy demo comes with issue #5)`);
console.log(`lane group ${group.name} from ${file}, RuleSet ${version}, ${bytes.length} bytes\n`);
const show = (what: string, headers: Record<string, string>) => console.log(`${what.padEnd(44)} ${call(headers)}`);
show("no lane headers", {});
show(`${group.overrideHeader ?? "override"}: canary`, group.overrideHeader ? { [group.overrideHeader]: "canary" } : {});
show("grayrelease: version2 (content rule)", { grayrelease: "version2" });
show(`outsider sends ${group.laneHeader}: canary`, { [group.laneHeader]: "canary" });
