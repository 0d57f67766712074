// `make demo`: the lane scenario through real Envoys. Starts the control plane (REST 127.0.0.1:7070,
// gRPC 7071), applies demo/lanegroup.json, starts mocka/mockb/mockc base (v1) and canary (v2) with
// one sidecar Envoy each, then the ingress gateway on 127.0.0.1:8080 once every filter ACKed, and
// prints curl commands with their expected output. Ctrl-C stops everything.
//
// Ports: GRAYLANE_REST_PORT (7070), GRAYLANE_GRPC_PORT (7071), GRAYLANE_GATEWAY_PORT (8080),
// GRAYLANE_MESH_PORT (15000: the first of 18 consecutive ports for apps and sidecars).
// Store: GRAYLANE_DEMO_STORE (":memory:"; e.g. sqlite:.data/demo.db). Lane group: a file argument.
// --forward-lane: the mocks forward the lane header instead of the trace header my-request-id.
import { readFileSync } from "node:fs";
import { startStack } from "./stack.js";

const env = (name: string, def: number) => {
  const v = process.env[name];
  if (v === undefined || v === "") return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) { console.error(`${name}: not a port: ${v}`); process.exit(2); }
  return n;
};

const args = process.argv.slice(2);
const forwardLane = args.includes("--forward-lane");
const file = args.find((a) => !a.startsWith("--")) ?? "demo/lanegroup.json";
const group = JSON.parse(readFileSync(file, "utf8"));
const ports = {
  rest: env("GRAYLANE_REST_PORT", 7070),
  grpc: env("GRAYLANE_GRPC_PORT", 7071),
  gateway: env("GRAYLANE_GATEWAY_PORT", 8080),
  base: env("GRAYLANE_MESH_PORT", 15000),
};

let stopping = false;
let stack: Awaited<ReturnType<typeof startStack>> | undefined;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  const hard = setTimeout(() => process.exit(code), 2500);
  hard.unref();
  await stack?.close().catch(() => {});
  process.exit(code);
};
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

try {
  stack = await startStack({ group, ports, store: process.env.GRAYLANE_DEMO_STORE || ":memory:", forwardLane, log: (l) => console.log(`· ${l}`) });
} catch (e) {
  console.error(`demo failed to start: ${(e as Error).message}`);
  process.exit(1);
}
if (stopping) await new Promise(() => {});

const gw = stack.gatewayUrl;
// No trace header: the gateway gives each request a new one (generateTraceId), so every run of a
// command is a trace of its own and trace memory never answers for an earlier one.
const examples: Array<[string, string]> = [
  [`curl -s ${gw}/mock`, "mocka(v1)->mockb(v1)->mockc(v1)"],
  [`curl -s ${gw}/mock -H 'x-asm-prefer-tag: canary'`, "mocka(v2)->mockb(v1)->mockc(v1)"],
  [`curl -s ${gw}/mock -H 'grayrelease: version2'`, "mocka(v2)->mockb(v1)->mockc(v1)"],
  [`curl -s ${gw}/mock -H 'x-graylane-lane: canary'`, "mocka(v1)->mockb(v1)->mockc(v1)"],
];
// Self-check before handing over: each example must give its expected output.
for (const [cmd, want] of examples) {
  const headers: Record<string, string> = {};
  for (const m of cmd.matchAll(/-H '([^:]+): ([^']*)'/g)) headers[m[1]] = m[2];
  const got = await (await fetch(`${gw}/mock`, { headers })).text();
  if (got !== want) console.error(`! self-check: ${cmd} gave ${got}, expected ${want}`);
}
console.log(`
Graylane demo ready: gateway ${gw}, control plane ${stack.server.url} (gRPC 127.0.0.1:${stack.grpcPort})
Lane group "${group.name}" from ${file}; every filter ACKed.

Try (expected output on the right):`);
for (const [cmd, want] of examples) console.log(`  ${cmd}\n      → ${want}`);
console.log(`
Put mockc into the canary lane too; mockb (base only) passes the lane on by trace memory, keyed by
the trace id (my-request-id) the gateway gave the request:
  curl -s -X PUT ${stack.server.url}/v1/lanegroups/${group.name} -H 'content-type: application/json' \\
    -d "$(jq -c '.lanes[0].services = ["mocka","mockc"]' ${file})"
  curl -s ${gw}/mock -H 'x-asm-prefer-tag: canary'
      → mocka(v2)->mockb(v1)->mockc(v2)

  npx graylane --server ${stack.server.url} status
  npx graylane --server ${stack.server.url} traffic --group ${group.name}

A progressive release of the canary lane (10% → approve → 50% → approve → 100%), with some traffic:
  npx graylane --server ${stack.server.url} release create --name demo --group ${group.name} --lane canary
  for i in $(seq 1 2000); do curl -s -o /dev/null ${gw}/mock -H "x-user-id: u$i"; done &
      (with mockc in the lane, each user mocka(v2) serves reaches mockc(v2) too: traffic shows equal canary shares)
  npx graylane --server ${stack.server.url} release watch demo      (another terminal: release approve demo)

Dashboard: ${stack.server.url}/

Ctrl-C stops everything.`);
