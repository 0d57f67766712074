// Shared by every benchmark: the quick (smoke) switch, percentiles, the machine description and the
// results files (bench/results/<name>.json, committed; bench/run.ts turns them into summary.md).
import { execFileSync } from "node:child_process";
import { cpus } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { envoyBin } from "../../control-plane/src/mesh/envoy-process.js";

/** BENCH_QUICK=1: every benchmark in a few seconds, tiny sizes (the numbers mean little). */
export const QUICK = process.env.BENCH_QUICK === "1";
/** bench/results (committed) for full runs; a quick run writes to .cache/bench-quick instead. */
export const RESULTS_DIR = resolve(process.env.BENCH_RESULTS_DIR ?? (QUICK ? ".cache/bench-quick" : "bench/results"));

/** Nearest-rank percentile (q in 0..1) of unsorted numbers. */
export function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

export function median(xs: number[]): number {
  return percentile(xs, 0.5);
}

/**
 * The median of `xs` and a bootstrap 95% interval for it (percentile method, `resamples` draws with
 * replacement, a fixed seed so a result file can be reproduced from its per-round values).
 */
export function bootstrapMedian(xs: number[], resamples = 10_000, seed = 0x9e3779b9): { median: number; lo: number; hi: number } {
  let state = seed >>> 0;
  const next = () => { // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const medians: number[] = [];
  for (let i = 0; i < resamples; i++) medians.push(median(Array.from(xs, () => xs[Math.floor(next() * xs.length)])));
  return { median: median(xs), lo: percentile(medians, 0.025), hi: percentile(medians, 0.975) };
}

/** A delta with its sign: "+3.2", "-1". */
export const sign = (x: number): string => (x >= 0 ? `+${x}` : `${x}`);

export const round = (x: number, digits = 2): number => Number.isFinite(x) ? Number(x.toFixed(digits)) : x;

/** 1-minute load average (other work on the machine skews every figure; recorded with each result). */
export function load1(): number {
  try { return Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]); } catch { return NaN; }
}
const LOAD_AT_START = load1();

export interface Machine {
  nproc: number;
  cpuModel: string;
  envoy: string;
  node: string;
  kernel: string;
  date: string;
  /** 1-minute load average when the benchmark process started and when it wrote its result. */
  loadAverage?: { atStart: number; atEnd: number };
}

export function envoyVersion(bin = envoyBin()): string {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8" });
    const m = /version: \S+?\/(\d+\.\d+\.\d+)\/\S+\/(\S+)\/(\S+)/.exec(out);
    return m ? `${m[1]} (${m[2]}, ${m[3]})` : out.trim();
  } catch {
    return "unavailable";
  }
}

export function machine(): Machine {
  let cpuModel = "";
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "";
  } catch { /* not Linux */ }
  let nproc = cpus().length;
  try { nproc = Number(execFileSync("nproc", { encoding: "utf8" }).trim()); } catch { /* no coreutils */ }
  let kernel = "";
  try { kernel = execFileSync("uname", ["-sr"], { encoding: "utf8" }).trim(); } catch { /* no uname */ }
  return { nproc, cpuModel: cpuModel || cpus()[0]?.model || "unknown", envoy: envoyVersion(), node: process.version, kernel, date: new Date().toISOString(),
    loadAverage: { atStart: LOAD_AT_START, atEnd: load1() } };
}

/** Writes bench/results/<name>.json: { benchmark, quick, machine, ...result }. */
export function writeResult(name: string, result: Record<string, unknown>): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${name}.json`);
  writeFileSync(path, JSON.stringify({ benchmark: name, quick: QUICK, machine: machine(), ...result }, null, 2) + "\n");
  return path;
}

export { rssAfterGc } from "./gc.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True when this module is the entry point (`tsx bench/x.ts`), not imported by a test or run.ts. */
export function isMain(metaUrl: string): boolean {
  return !!process.argv[1] && resolve(process.argv[1]) === new URL(metaUrl).pathname;
}

export { freePorts } from "../../demo/stack.js";

/** One GET with any headers (fetch refuses to set Host): resolves to status and body. */
export async function httpGet(url: string, headers: Record<string, string>, agent?: import("node:http").Agent): Promise<{ status: number; body: string }> {
  const http = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = http.request(url, { headers, agent }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}
