// Envoy for benchmarks: a chosen --concurrency, optionally pinned to CPUs with taskset, its admin
// address from a file; plus the process's CPU time (/proc/<pid>/stat) and admin counters.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface BenchEnvoy {
  id: string;
  pid: number;
  admin: string;
  listeners: string[];
  process: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

export function hasTaskset(): boolean {
  return spawnSync("sh", ["-c", "command -v taskset"]).status === 0;
}

/** Starts Envoy; `cpus` (e.g. "0") pins it with taskset (exec'd, so the pid is Envoy's). */
export async function startBenchEnvoy(bin: string, id: string, config: unknown, opts: { concurrency: number; cpus?: string; expectListeners: number; logLevel?: string }): Promise<BenchEnvoy> {
  const dir = mkdtempSync(join(tmpdir(), `graylane-bench-${id}-`));
  writeFileSync(join(dir, "envoy.json"), typeof config === "string" ? config : JSON.stringify(config));
  const adminPath = join(dir, "admin-address");
  const args = ["-c", join(dir, "envoy.json"), "--concurrency", String(opts.concurrency), "--use-dynamic-base-id",
    "--admin-address-path", adminPath, "--log-level", opts.logLevel ?? "warn", "--drain-time-s", "0", "--parent-shutdown-time-s", "1"];
  const [cmd, argv] = opts.cpus !== undefined ? ["taskset", ["-c", opts.cpus, bin, ...args]] : [bin, args];
  let log = "";
  const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout!.on("data", (d) => (log = (log + d).slice(-100_000)));
  p.stderr!.on("data", (d) => (log = (log + d).slice(-100_000)));
  const exited = new Promise<void>((r) => p.on("exit", () => r()));
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1500))]);
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const end = Date.now() + 30_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`envoy ${id} exited:\n${log}`);
      if (Date.now() > end) throw new Error(`envoy ${id} did not start:\n${log}`);
      let admin = "";
      try { admin = readFileSync(adminPath, "utf8").trim(); } catch { /* not yet */ }
      if (admin) {
        const res = await fetch(`http://${admin}/listeners?format=json`).catch(() => undefined);
        const body = res?.ok ? (await res.json()) as { listener_statuses?: Array<{ local_address?: { socket_address?: { address?: string; port_value?: number } } }> } : undefined;
        const listeners = (body?.listener_statuses ?? []).flatMap((l) => {
          const sa = l.local_address?.socket_address;
          return sa?.port_value ? [`${sa.address}:${sa.port_value}`] : [];
        });
        if (listeners.length >= opts.expectListeners) return { id, pid: p.pid!, admin: `http://${admin}`, listeners, process: p, log: () => log, stop };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stop();
    throw e;
  }
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
