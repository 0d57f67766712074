// bench/filter-decision: time per request through the real filter.wasm in the Node proxy-wasm host,
// against the same host running a filter that does nothing, side by side in one run.
// Realistic RuleSet: 5 groups, 20 conditions (3 regexes), weights; requests with ~18 headers.
// The host's own cost (JS header maps, property encoding) dominates both columns; the difference is
// the decision plus the filter's host calls. bench/envoy-overhead measures the same inside Envoy.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callTotals, type WasmVm } from "../control-plane/src/wasmhost/index.js";
import { isMain, median, QUICK, round, writeResult } from "./support/common.js";
import { buildNoopFilter } from "./support/noop.js";
import { benchVm } from "./support/vm.js";
import { benchRequest, benchRuleSet } from "./support/ruleset.js";

const WASM = "filter/build/filter.wasm";

export interface DecisionOptions { requests: number; rounds: number; log?: (line: string) => void }

export const DEFAULTS: DecisionOptions = {
  requests: Number(process.env.BENCH_REQUESTS ?? (QUICK ? 5_000 : 100_000)),
  rounds: QUICK ? 2 : 5,
};

function run(vm: WasmVm, reqs: Array<Array<[string, string]>>, n: number): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const s = vm.newHttpStream();
    s.callOnRequestHeaders(reqs[i % reqs.length]);
    s.callOnResponseHeaders([[":status", "200"]]);
    s.complete();
  }
  return Number(process.hrtime.bigint() - t0) / n / 1000; // µs per request
}

export async function runFilterDecision(opts: DecisionOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const rs = benchRuleSet();
  const dir = mkdtempSync(join(tmpdir(), "graylane-bench-"));
  let noopPath: string;
  try {
    noopPath = buildNoopFilter(dir);
    const filter = await benchVm(WASM, JSON.stringify({ ruleSet: rs.base64 }));
    const noop = await benchVm(noopPath, "{}");
    // The same requests as bench/envoy-overhead, but each names shop4-web by its host.
    const reqs = Array.from({ length: 1000 }, (_, i) => benchRequest(i, "shop4-web.default.svc.cluster.local:8080"));

    // Sanity: the filter really decides (and the noop really does not).
    const probe = filter.newHttpStream();
    probe.callOnRequestHeaders(reqs[1]);
    const lane = probe.requestHeader("x-graylane-lane");
    probe.complete();
    if (!lane) throw new Error("filter wrote no lane header");

    run(filter, reqs, opts.requests); run(noop, reqs, opts.requests); // warm-up
    const withFilter: number[] = [];
    const without: number[] = [];
    for (let r = 0; r < opts.rounds; r++) { // interleaved rounds, so drift hits both alike
      withFilter.push(run(filter, reqs, opts.requests));
      without.push(run(noop, reqs, opts.requests));
    }
    const f = median(withFilter);
    const n = median(without);
    // Host calls per request on these requests, counted apart (counting is off in the timed VMs).
    const counted = await benchVm(WASM, JSON.stringify({ ruleSet: rs.base64 }), { countCalls: true });
    run(counted, reqs, 1000);
    counted.calls!.reset();
    run(counted, reqs, 1000);
    const t = callTotals(counted.calls!.snapshot());
    const calls = { hooks: t.hooks / 1000, host: t.host / 1000, intoModule: t.intoModule / 1000 };
    log(`bench/filter-decision: ${opts.requests} requests × ${opts.rounds} rounds, RuleSet ${rs.ruleSet.groups.length} groups, ${rs.conditions} conditions, ${rs.regexes} regex DFAs, ${rs.bytes.length} bytes`);
    log(`  host + noop filter     ${n.toFixed(2)} µs/request`);
    log(`  host + graylane filter ${f.toFixed(2)} µs/request (example lane: ${lane})`);
    log(`  ratio                  ${(f / n).toFixed(2)}×   filter cost ≈ ${(f - n).toFixed(2)} µs/request (incl. its host calls)`);
    log(`  calls per request      ${calls.host} host calls, ${calls.hooks} hooks, ${calls.intoModule} calls back into the module (allocation)`);
    log(`  release filter.wasm    ${statSync(WASM).size} bytes`);
    log(`  linear memory          ${filter.memoryBytes()} bytes after ${(opts.rounds + 1) * opts.requests} requests`);
    return {
      setup: { host: "control-plane/src/wasmhost (Node, V8)", requests: opts.requests, rounds: opts.rounds, statistic: "median over interleaved rounds",
        ruleSet: { groups: rs.ruleSet.groups.length, conditions: rs.conditions, regexDfas: rs.regexes, bytes: rs.bytes.length } },
      noopUsPerRequest: round(n), graylaneUsPerRequest: round(f), ratio: round(f / n), filterCostUs: round(f - n), callsPerRequest: calls,
      filterWasmBytes: statSync(WASM).size, linearMemoryBytes: filter.memoryBytes(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  runFilterDecision().then((r) => {
    console.log(`  wrote ${writeResult("filter-decision", r)}`);
  }).catch((e) => { console.error(e); process.exit(1); });
}
