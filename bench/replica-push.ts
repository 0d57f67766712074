// bench/replica-push: a lane-group change through the REST API until every filter of the fleet has
// it, with the fleet on one control plane, then spread over three replicas (`graylane serve
// --store etcd://`, one process each, a real etcd), in the same run on the same machine. The change
// is PUT on the first replica; the others learn it through etcd. Measured from the PUT being sent
// to the last filter receiving the new version (the simulated filters timestamp what they
// receive), p50/p99 over the changes; each replica process's CPU per change (/proc). On 2 cores
// three replicas and the fleet share the same CPUs, so spreading cannot add capacity here; the
// figures say what it costs or saves on such a machine, not on a cluster.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { Fleet } from "./support/fleet.js";
import { freePorts, isMain, median, percentile, QUICK, round, sleep, writeResult } from "./support/common.js";
import { benchGroup, benchGroupsJson } from "./support/ruleset.js";
import { startEtcd } from "../test/support/etcd.js";
import { until } from "../test/support/wait.js";

export interface ReplicaPushOptions { size: number; changes: number; warmup: number; processes: number; log?: (line: string) => void }

export const DEFAULTS: ReplicaPushOptions = QUICK
  ? { size: 30, changes: 3, warmup: 1, processes: 2 }
  : { size: 10_000, changes: 10, warmup: 2, processes: 4 };

interface Replica { child: ChildProcess; url: string; grpc: string }

/** utime + stime of a process, ms (Linux /proc, 100 ticks a second). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export async function runReplicaPush(opts: ReplicaPushOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const etcd = await startEtcd();
  const replicas: Replica[] = [];
  let fleet: Fleet | undefined;
  try {
    for (let i = 0; i < 3; i++) {
      const [port, grpcPort] = await freePorts(2);
      const child = spawn(process.execPath, ["bin/graylane.mjs", "serve", "--store", etcd.url, "--port", String(port), "--grpc-port", String(grpcPort)], { stdio: ["ignore", "ignore", "inherit"] });
      const r = { child, url: `http://127.0.0.1:${port}`, grpc: `127.0.0.1:${grpcPort}` };
      replicas.push(r);
      await until("replica ready", () => fetch(`${r.url}/readyz`).then((x) => x.ok, () => false), 60_000, 50);
    }
    const [a] = replicas as [Replica];
    let step = 0;
    const put = async (body: Record<string, unknown>) => {
      const res = await fetch(`${a.url}/v1/lanegroups/${body.name as string}`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "bench" }, body: JSON.stringify(body) });
      if (res.status >= 300) throw new Error(`PUT ${res.status}: ${await res.text()}`);
    };
    for (const g of benchGroupsJson()) await put(g);

    const run = async (mode: "one replica" | "three replicas") => {
      const targets = mode === "one replica" ? [a.grpc] : replicas.map((r) => r.grpc);
      fleet = await Fleet.spawn(targets, opts.size, opts.processes);
      await until(`${opts.size} subscribers on the board`, async () => {
        const st = (await (await fetch(`${a.url}/v1/status?limit=1`)).json()) as { summary: { connected: number; atVersion: number }; replicas: Array<{ connected: number }> };
        return st.summary.connected === opts.size && st.summary.atVersion === opts.size && st;
      }, 120_000, 20);
      const perReplica = ((await (await fetch(`${a.url}/v1/status?limit=1`)).json()) as { replicas: Array<{ connected: number }> }).replicas.map((r) => r.connected);
      const times: number[] = [];
      const cpu0 = replicas.map((r) => cpuMsOf(r.child.pid!));
      for (let i = -opts.warmup; i < opts.changes; i++) {
        if (i === 0) cpu0.splice(0, 3, ...replicas.map((r) => cpuMsOf(r.child.pid!)));
        const before = new Set(Object.keys(await fleet.received()));
        const sentAt = performance.timeOrigin + performance.now();
        step++;
        await put(benchGroup(step % 5, 10 + step / 100));
        const got = await until("every filter has the change", async () => {
          const rec = await fleet!.received();
          const fresh = Object.entries(rec).find(([v, x]) => !before.has(v) && x.count >= opts.size);
          return fresh?.[1];
        }, 120_000, 20);
        if (i >= 0) times.push(got.lastAt - sentAt);
        await sleep(50);
      }
      const cpu = replicas.map((r, k) => round((cpuMsOf(r.child.pid!) - cpu0[k]!) / opts.changes));
      await fleet.stop();
      fleet = undefined;
      await until("fleet gone from the board", async () => ((await (await fetch(`${a.url}/v1/status?limit=1`)).json()) as { summary: { connected: number } }).summary.connected === 0, 120_000, 20);
      const result = {
        mode, subscribers: opts.size, perReplica,
        putToAllReceivedMs: { p50: round(median(times)), p99: round(percentile(times, 0.99)), max: round(Math.max(...times)), all: times.map((t) => round(t)) },
        replicaCpuMsPerChange: cpu,
      };
      log(`replica-push: ${mode}, ${opts.size} filters (${perReplica.join(" / ")}): PUT → all received p50 ${result.putToAllReceivedMs.p50} ms, p99 ${result.putToAllReceivedMs.p99} ms; CPU per change per replica ${cpu.join(" / ")} ms`);
      return result;
    };
    const one = await run("one replica");
    const three = await run("three replicas");
    return {
      setup: { replicas: "3 × `graylane serve --store etcd://` (one process each) on one etcd; the change PUT on the first", fleet: `${opts.size} simulated filters over ${opts.processes} processes, each with the replicas as endpoints (filter i starts on the i % n-th)`, measure: "PUT sent → the last filter received the version (their timestamps), after warmup changes" },
      one, three,
      p99ThreeToOne: round(three.putToAllReceivedMs.p99 / one.putToAllReceivedMs.p99, 2),
    };
  } finally {
    await fleet?.stop();
    for (const r of replicas) r.child.kill("SIGKILL");
    await etcd.stop();
  }
}

if (isMain(import.meta.url)) {
  runReplicaPush().then((r) => {
    console.log(`  three replicas ÷ one, p99: ${r.p99ThreeToOne}`);
    console.log(`  wrote ${writeResult("replica-push", r)}`);
    process.exit(0);
  }).catch((e) => { console.error(e); process.exit(1); });
}
