// bench/filter-decision: time per request through the real filter.wasm in the Node proxy-wasm host,
// against the same host running a filter that does nothing, side by side in one run.
// Realistic RuleSet: 5 groups, 20 conditions (3 regexes), weights; requests with ~20 headers.
import { execFileSync } from "node:child_process";
import { mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileRuleSet } from "../control-plane/src/compile/index.js";
import { parseLaneGroup } from "../control-plane/src/model/lanegroup.js";
import { loadFilterModule, ManualClock, SharedData, WasmVm } from "../control-plane/src/wasmhost/index.js";

const WASM = "filter/build/filter.wasm";
const N = Number(process.env.BENCH_REQUESTS ?? 100_000);
const ROUNDS = 5;

function group(i: number) {
  const name = `shop${i}`;
  // 4 conditions per group × 5 groups = 20; a cookie regex in groups 0-2 = 3 regexes.
  const second = i < 3
    ? { cookies: { uid: { regex: `${i + 1}[0-9]{3}` } }, method: ["GET", "POST"] }
    : { headers: { "x-team": { prefix: "qa-" } }, os: ["iOS", "Android"] };
  return {
    name,
    services: [{ name: `${name}-web`, hosts: [`${name}-web`, `${name}-web.default.svc.cluster.local`] }, { name: `${name}-api` }],
    overrideHeader: "x-asm-prefer-tag", traceHeader: "x-request-id", stickyKey: { header: "x-user-id" },
    lanes: [
      { name: "gray", services: [`${name}-web`], match: [{ headers: { grayrelease: { exact: "version2" } } }, second] },
      { name: "canary", services: [`${name}-web`, `${name}-api`], weight: 10, match: [{ queryParams: { beta: { exact: "1" } } }] },
      { name: "blue", services: [`${name}-api`], weight: 5 },
    ],
  };
}

const groups = Array.from({ length: 5 }, (_, i) => {
  const r = parseLaneGroup(group(i));
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
});
const { bytes, ruleSet } = compileRuleSet(groups);
const conditions = ruleSet.groups.flatMap((g) => g.lanes.flatMap((l) => l.match.flatMap((b) => b.conditions))).length;

const UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1";
function request(i: number): Array<[string, string]> {
  return [
    [":method", "GET"], [":scheme", "http"], [":authority", "shop4-web.default.svc.cluster.local:8080"],
    [":path", `/api/items/${i}?page=2&beta=0`], ["user-agent", UA], ["accept", "application/json"],
    ["accept-encoding", "gzip, deflate, br"], ["accept-language", "en-US,en;q=0.9"],
    ["x-request-id", `7f3c${i}-bench-trace`], ["x-user-id", `user-${i % 50_000}`],
    ["cookie", `session=abc123; uid=9${i % 1000}; theme=dark`], ["x-forwarded-for", "10.1.2.3"],
    ["x-forwarded-proto", "http"], ["x-envoy-expected-rq-timeout-ms", "15000"], ["content-length", "0"],
    ["baggage", "tenant=acme,region=eu"], ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ["x-b3-sampled", "1"], ["grayrelease", "version1"], ["cache-control", "no-cache"],
  ];
}

async function vmFor(path: string, config: string) {
  const vm = await WasmVm.create(await loadFilterModule(path), {
    shared: new SharedData(), clock: new ManualClock(1_700_000_000_000_000_000n), vmId: "graylane",
    properties: { "xds.listener_direction": 2 }, foreignFunctions: { clear_route_cache: () => new Uint8Array() },
  });
  if (!vm.configure(config)) throw new Error(`${path} refused its configuration`);
  return vm;
}

function run(vm: WasmVm, reqs: Array<Array<[string, string]>>): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const s = vm.newHttpStream();
    s.callOnRequestHeaders(reqs[i % reqs.length]);
    s.callOnResponseHeaders([[":status", "200"]]);
    s.complete();
  }
  return Number(process.hrtime.bigint() - t0) / N / 1000; // µs per request
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "graylane-bench-"));
  const noopPath = join(dir, "noop.wasm");
  writeFileSync(join(dir, "asconfig.json"), "{}"); // keep asc from compiling the project's entries in
  execFileSync("node_modules/.bin/asc", ["bench/noop-filter.ts", "--config", join(dir, "asconfig.json"), "-o", noopPath, "--runtime", "stub", "-Oz", "--exportStart", "_initialize"], { stdio: "inherit" });
  const filter = await vmFor(WASM, JSON.stringify({ ruleSet: Buffer.from(bytes).toString("base64") }));
  const noop = await vmFor(noopPath, "{}");
  const reqs = Array.from({ length: 1000 }, (_, i) => request(i));

  // Sanity: the filter really decides (and the noop really does not).
  const probe = filter.newHttpStream();
  probe.callOnRequestHeaders(reqs[0]);
  const lane = probe.requestHeader("x-graylane-lane");
  probe.complete();
  if (!lane) throw new Error("filter wrote no lane header");

  run(filter, reqs); run(noop, reqs); // warm-up
  const withFilter: number[] = [];
  const without: number[] = [];
  for (let r = 0; r < ROUNDS; r++) { // interleaved rounds, so drift hits both alike
    withFilter.push(run(filter, reqs));
    without.push(run(noop, reqs));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const f = median(withFilter);
  const n = median(without);
  console.log(`bench/filter-decision: ${N} requests × ${ROUNDS} rounds, RuleSet ${ruleSet.groups.length} groups, ${conditions} conditions, ${ruleSet.dfas.length} regex DFAs, ${bytes.length} bytes`);
  console.log(`  host + noop filter     ${n.toFixed(2)} µs/request`);
  console.log(`  host + graylane filter ${f.toFixed(2)} µs/request (example lane: ${lane})`);
  console.log(`  ratio                  ${(f / n).toFixed(2)}×   filter cost ≈ ${(f - n).toFixed(2)} µs/request (incl. its host calls)`);
  console.log(`  release filter.wasm    ${statSync(WASM).size} bytes`);
  console.log(`  linear memory          ${filter.memoryBytes()} bytes after ${(ROUNDS + 1) * N} requests`);
}

main().catch((e) => { console.error(e); process.exit(1); });
