// Envoy for benchmarks: a chosen --concurrency, optionally pinned to CPUs with taskset, its admin
// address from a file; plus the process's CPU time (/proc/<pid>/stat) and admin counters.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { startEnvoy, type RunningEnvoy } from "../../control-plane/src/mesh/envoy-process.js";

export type BenchEnvoy = RunningEnvoy;

export function hasTaskset(): boolean {
  return spawnSync("sh", ["-c", "command -v taskset"]).status === 0;
}

/** Starts Envoy (mesh/envoy-process.ts); `cpus` (e.g. "0") pins it with taskset. */
export function startBenchEnvoy(bin: string, id: string, config: unknown, opts: { concurrency: number; cpus?: string; expectListeners: number; logLevel?: string }): Promise<BenchEnvoy> {
  return startEnvoy(bin, `bench-${id}`, config, opts.expectListeners, { concurrency: opts.concurrency, cpus: opts.cpus, logLevel: opts.logLevel, timeoutMs: 30_000 });
}

/** utime + stime of a process (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from #3 (state) on
  const ticks = Number(fields[11]) + Number(fields[12]); // #14 utime, #15 stime
  return ticks / clockTicks();
}

let hz = 0;
function clockTicks(): number {
  if (!hz) hz = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
  return hz;
}

/** Counter and gauge values of the admin /stats (JSON), by name. */
export async function envoyStats(admin: string, filter?: string): Promise<Map<string, number>> {
  const url = `${admin}/stats?format=json${filter ? `&filter=${encodeURIComponent(filter)}` : ""}`;
  const body = (await (await fetch(url)).json()) as { stats: Array<{ name: string; value?: number }> };
  return new Map(body.stats.filter((s) => typeof s.value === "number").map((s) => [s.name, s.value!]));
}
