// `make bench`: every benchmark, each in its own process (so each measures a clean process), then
// bench/results/summary.md from their JSON results. BENCH_QUICK=1: smoke sizes, results in
// .cache/bench-quick. `tsx bench/run.ts envoy-overhead push-latency` runs only those;
// `tsx bench/run.ts --summary` only rewrites the summary.
import { spawnSync } from "node:child_process";
import { machine, QUICK, RESULTS_DIR } from "./support/common.js";
import { writeSummary } from "./support/summary.js";

const ALL = ["envoy-overhead", "push-latency", "replica-push", "relay-soak", "counter-exactness", "filter-memory", "filter-decision", "kube-push"];

const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith("--"));
const unknown = only.filter((a) => !ALL.includes(a));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")} (have: ${ALL.join(", ")})`);
  process.exit(2);
}
const m = machine();
console.log(`bench: ${m.nproc} CPUs, ${m.cpuModel}, Envoy ${m.envoy}, Node ${m.node}${QUICK ? " — QUICK mode" : ""}; results in ${RESULTS_DIR}`);
const failed: string[] = [];
if (!args.includes("--summary")) {
  for (const name of only.length ? only : ALL) {
    console.log(`\n== bench/${name}.ts`);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ["--import", "tsx", `bench/${name}.ts`], { stdio: "inherit", env: process.env });
    console.log(`== bench/${name}.ts: ${r.status === 0 ? "done" : `FAILED (${r.status ?? r.signal})`} in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (r.status !== 0) failed.push(name);
  }
}
console.log(`\nwrote ${writeSummary(RESULTS_DIR)}`);
if (failed.length) {
  console.error(`failed: ${failed.join(", ")}`);
  process.exit(1);
}
