// The parent side of the simulated fleet (push-fleet.ts runs in each child process): spawning,
// asking for CPU, report stats and versions received, stopping.
import { fork, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import type { FleetJob, Received, ReportStats } from "./push-fleet.js";

/** The simulated fleet: `count` filters over up to `processes` child processes. */
export class Fleet {
  private constructor(private readonly children: ChildProcess[]) {}

  /** `target`: one control plane, or several replicas (filter i starts on the i % n-th, fails over to the next). */
  static async spawn(target: string | string[], count: number, processes: number, perNode = 4): Promise<Fleet> {
    const n = Math.max(1, Math.min(processes, count));
    const children: ChildProcess[] = [];
    const ready: Array<Promise<void>> = [];
    let first = 0;
    for (let p = 0; p < n; p++) {
      const c = Math.floor(count / n) + (p < count % n ? 1 : 0);
      const child = fork(resolve("bench/support/push-fleet.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
      children.push(child);
      ready.push(new Promise<void>((res, rej) => {
        child.on("message", (m: { type: string; message?: string }) => {
          if (m.type === "ready") res();
          else if (m.type === "error") rej(new Error(`fleet: ${m.message}`));
        });
        child.on("exit", (code) => rej(new Error(`fleet process exited (${code})`)));
      }));
      const job: FleetJob = { target: typeof target === "string" ? target : target[0]!, targets: typeof target === "string" ? undefined : target, first, count: c, perNode };
      child.send(job);
      first += c;
    }
    const fleet = new Fleet(children);
    try {
      await Promise.all(ready);
    } catch (e) {
      await fleet.stop();
      throw e;
    }
    return fleet;
  }

  get processes(): number {
    return this.children.length;
  }

  /** Sends `request` to every process and collects the `field` of each one's `type` reply. */
  private ask<T>(request: string, type: string, field: string): Promise<T[]> {
    return Promise.all(this.children.map((c) => new Promise<T>((r) => {
      const on = (m: Record<string, unknown>) => { if (m.type === type) { c.off("message", on); r(m[field] as T); } };
      c.on("message", on);
      c.send(request);
    })));
  }

  /** CPU µs the fleet's processes used so far, together. */
  async cpuUs(): Promise<number> {
    return (await this.ask<number>("cpu", "cpu", "us")).reduce((a, b) => a + b, 0);
  }

  /** The reports' stats of every process together (latencies since the last call). */
  async reportStats(): Promise<ReportStats> {
    return (await this.ask<ReportStats>("report-stats", "stats", "stats")).reduce((a, b) => ({ sent: a.sent + b.sent, answered: a.answered + b.answered, failed: a.failed + b.failed, inFlight: a.inFlight + b.inFlight,
      latenciesMs: a.latenciesMs.concat(b.latenciesMs), sumOfLast: a.sumOfLast + b.sumOfLast, reconnects: a.reconnects + b.reconnects, skipped: a.skipped + b.skipped }));
  }

  /** Per version: how many filters received it, and when the last did (epoch ms). */
  async received(): Promise<Received> {
    const out: Received = {};
    for (const e of await this.ask<Received>("received", "received", "received")) for (const [v, x] of Object.entries(e)) {
      const o = (out[v] ??= { count: 0, lastAt: 0 });
      o.count += x.count;
      o.lastAt = Math.max(o.lastAt, x.lastAt);
    }
    return out;
  }

  /** Every filter reports every `everyMs` from now on. */
  startReports(everyMs: number): void {
    for (const c of this.children) c.send({ startReports: everyMs });
  }

  stopReports(): void {
    for (const c of this.children) c.send("stop-reports");
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => new Promise<void>((r) => {
      if (c.exitCode !== null) return r();
      c.once("exit", () => r());
      c.send("stop");
      setTimeout(() => { if (c.exitCode === null) c.kill("SIGKILL"); }, 3000);
    })));
  }
}

