// bench/push-latency: a lane-group change through the REST API until every filter ACKed it.
//
// The control plane as `graylane serve` runs it (startControlPlane, in this
// process, SQLite in memory) holding the realistic RuleSet (5 groups); one real Envoy sidecar with
// filter.wasm subscribed through its own gRPC cluster (one subscriber per root context: main thread
// and 2 workers); and 1, 100, 1,000 more subscribers — grpc-js streams, one HTTP/2 connection each,
// spread over child processes, ACKing each push at once. Per size, 20 changes (a group's canary
// weight), one after another: the time from the revision's commit (the PUT accepted) to the last
// ACK the server received (its own "ack" events: the moment /v1/status would call the fleet "at
// version v"), p50/p99; also from the client sending the PUT. The control plane's CPU per change
// (process.cpuUsage, which includes the REST client issuing the PUTs) and memory (rss, heap).
// Ratios are against the 1-subscriber run of the same invocation.
import { fork, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { startControlPlane, type ControlPlane } from "../control-plane/src/server/index.js";
import { sidecarConfig, type Topology } from "../control-plane/src/mesh/envoy-config.js";
import { envoyBin, startEnvoy, type RunningEnvoy } from "../control-plane/src/mesh/envoy-process.js";
import { openStore, type Store } from "../control-plane/src/store/index.js";
import { freePorts, isMain, median, percentile, QUICK, round, sleep, writeResult } from "./support/common.js";
import { benchGroup, benchGroupsJson } from "./support/ruleset.js";
import type { SubscriberJob } from "./support/push-subscribers.js";

export interface PushOptions {
  sizes: number[];
  changes: number;
  /** Changes pushed and ACKed before the measured ones at each size (JIT, buffers, first-time paths). */
  warmup: number;
  /** Child processes for the grpc-js subscribers (fewer when a size has fewer subscribers). */
  processes: number;
  /** Also subscribe one real Envoy sidecar (concurrency 2: 3 subscribers). */
  envoy: boolean;
  log?: (line: string) => void;
}

export const DEFAULTS: PushOptions = QUICK
  ? { sizes: [1, 20], changes: 5, warmup: 1, processes: 4, envoy: true }
  : { sizes: [1, 100, 1000], changes: 20, warmup: 2, processes: 4, envoy: true };

/** Root contexts of an Envoy with --concurrency 2 that subscribe: the main thread's and 2 workers'. */
const ENVOY_SUBSCRIBERS = 3;

export interface PushSizeResult {
  grpcSubscribers: number;
  envoySubscribers: number;
  processes: number;
  changes: number;
  commitToAllAckedMs: { p50: number; p99: number; max: number; mean: number; all: number[] };
  /** Commit → the last RuleResponse written (the server's synchronous push loop), median. */
  commitToLastPushWrittenMs: number;
  /** Commit → the first and the median ACK received, medians over the changes. */
  commitToFirstAckMs: number;
  commitToMedianAckMs: number;
  putSentToAllAckedMs: { p50: number; p99: number };
  p99RatioToFirstSize: number;
  controlPlane: { cpuMsPerChange: number; rssMB: number; heapUsedMB: number; rssDeltaMBFromIdle: number };
  /** CPU the grpc-js subscriber processes used per change, together (they share the machine). */
  subscriberProcessesCpuMsPerChange: number;
}

async function spawnSubscribers(target: string, count: number, processes: number, perNode: number): Promise<ChildProcess[]> {
  const n = Math.max(1, Math.min(processes, count));
  const children: ChildProcess[] = [];
  const ready: Array<Promise<void>> = [];
  let first = 0;
  for (let p = 0; p < n; p++) {
    const c = Math.floor(count / n) + (p < count % n ? 1 : 0);
    const child = fork(resolve("bench/support/push-subscribers.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    children.push(child);
    ready.push(new Promise<void>((res, rej) => {
      child.on("message", (m: { type: string; message?: string }) => {
        if (m.type === "ready") res();
        else if (m.type === "error") rej(new Error(`subscriber: ${m.message}`));
      });
      child.on("exit", (code) => rej(new Error(`subscriber process exited (${code})`)));
    }));
    const job: SubscriberJob = { target, first, count: c, perNode };
    child.send(job);
    first += c;
  }
  await Promise.all(ready);
  return children;
}

/** CPU µs the subscriber processes used so far, together. */
async function subscribersCpu(children: ChildProcess[]): Promise<number> {
  const each = await Promise.all(children.map((c) => new Promise<number>((r) => {
    const on = (m: { type: string; us?: number }) => { if (m.type === "cpu") { c.off("message", on); r(m.us!); } };
    c.on("message", on);
    c.send("cpu");
  })));
  return each.reduce((a, b) => a + b, 0);
}

async function stopSubscribers(children: ChildProcess[]): Promise<void> {
  await Promise.all(children.map((c) => new Promise<void>((r) => {
    if (c.exitCode !== null) return r();
    c.once("exit", () => r());
    c.send("stop");
    setTimeout(() => { if (c.exitCode === null) c.kill("SIGKILL"); }, 3000);
  })));
}

export async function runPushLatency(opts: PushOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const store: Store = await openStore(":memory:");
  // Registered before the rule server subscribes, so it runs first: the commit, before the compile.
  let lastCommitAt = 0;
  store.onChange(() => { lastCommitAt = performance.now(); });
  const server: ControlPlane = await startControlPlane({ port: 0, grpcPort: 0, store });
  const { grpc, grpcPort } = server;
  let envoy: RunningEnvoy | undefined;
  let app: Server | undefined;
  let children: ChildProcess[] = [];
  try {
    const put = async (body: unknown) => {
      const res = await fetch(`${server.url}/v1/lanegroups/${(body as { name: string }).name}`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "bench" }, body: JSON.stringify(body) });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`PUT ${res.status}: ${text}`);
    };
    for (const g of benchGroupsJson()) await put(g);

    const envoySubs = opts.envoy ? ENVOY_SUBSCRIBERS : 0;
    /** Resolves when `want` live subscribers all ACKed the served version. */
    const settled = async (want: number, timeoutMs = 60_000) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const st = grpc.status();
        const live = st.nodes.flatMap((n) => n.subscribers.filter((s) => s.connected));
        if (live.length === want && live.every((s) => s.ackedVersion === st.version)) return;
        if (Date.now() > end) throw new Error(`subscribers: ${live.length} live (want ${want}), ${live.filter((s) => s.ackedVersion === st.version).length} at ${st.version}`);
        await sleep(20);
      }
    };
    if (opts.envoy) {
      app = createServer((_, res) => res.end("ok"));
      await new Promise<void>((r) => app!.listen(0, "127.0.0.1", r));
      const [inboundPort, outboundPort] = await freePorts(2);
      const topology: Topology = {
        group: "shop0",
        services: [{ name: "shop0-web", hosts: ["shop0-web", "shop0-web.default.svc.cluster.local"], instances: [{ lane: "base", version: "v1", appPort: (app.address() as AddressInfo).port, inboundPort, outboundPort }] }],
        gateway: { port: 0 },
        controlPlane: { grpcHost: "127.0.0.1", grpcPort },
        wasmPath: resolve("filter/build/filter.wasm"),
        plugin: { reportIntervalMs: 5000 },
      };
      envoy = await startEnvoy(envoyBin(), "bench-push-sidecar", sidecarConfig(topology, 0, 0), 2);
    }
    await settled(envoySubs);
    const idle = process.memoryUsage();

    const results: PushSizeResult[] = [];
    let step = 0;
    for (const size of opts.sizes) {
      children = await spawnSubscribers(`127.0.0.1:${grpcPort}`, size, opts.processes, 4);
      await settled(size + envoySubs);
      const want = size + envoySubs;
      const fromCommit: number[] = [];
      const fromSent: number[] = [];
      const lastPush: number[] = [];
      const firstAck: number[] = [];
      const medianAck: number[] = [];
      let subCpu0 = 0;
      let cpu0 = process.cpuUsage();
      for (let i = -opts.warmup; i < opts.changes; i++) {
        if (i === 0) {
          subCpu0 = await subscribersCpu(children);
          cpu0 = process.cpuUsage();
        }
        step++;
        let lastAck = 0;
        let pushedAt = 0;
        const ackTimes: number[] = [];
        let acks = 0;
        let version = "";
        let done!: () => void;
        const all = new Promise<void>((r) => (done = r));
        const offAck = grpc.onEvent((e) => {
          if (e.type !== "ack" && e.type !== "push") return;
          if (!version) version = grpc.cache.current().version;
          if (e.version !== version) return;
          if (e.type === "push") { pushedAt = performance.now(); return; }
          lastAck = performance.now();
          ackTimes.push(lastAck);
          if (++acks === want) done();
        });
        const sentAt = performance.now();
        try {
          // 5 groups take turns; each change gives one group's canary a weight it never had.
          await put(benchGroup(step % 5, 10 + step / 100));
          version = grpc.cache.current().version;
          const timer = setTimeout(done, 30_000);
          await all;
          clearTimeout(timer);
        } finally {
          offAck();
        }
        const committedAt = lastCommitAt;
        if (acks !== want) throw new Error(`change ${i} at ${size}: ${acks} of ${want} ACKed ${version} within 30 s`);
        await sleep(20);
        if (i < 0) continue;
        fromCommit.push(lastAck - committedAt);
        fromSent.push(lastAck - sentAt);
        lastPush.push(pushedAt - committedAt);
        firstAck.push(ackTimes[0] - committedAt);
        medianAck.push(median(ackTimes) - committedAt);
      }
      const cpu = process.cpuUsage(cpu0);
      const subCpu = (await subscribersCpu(children)) - subCpu0;
      const mem = process.memoryUsage();
      const first = results[0];
      const p99 = percentile(fromCommit, 0.99);
      results.push({
        grpcSubscribers: size, envoySubscribers: envoySubs, processes: Math.max(1, Math.min(opts.processes, size)), changes: opts.changes,
        commitToAllAckedMs: {
          p50: round(median(fromCommit)), p99: round(p99), max: round(Math.max(...fromCommit)),
          mean: round(fromCommit.reduce((a, b) => a + b, 0) / fromCommit.length), all: fromCommit.map((x) => round(x)),
        },
        commitToLastPushWrittenMs: round(median(lastPush)),
        commitToFirstAckMs: round(median(firstAck)),
        commitToMedianAckMs: round(median(medianAck)),
        putSentToAllAckedMs: { p50: round(median(fromSent)), p99: round(percentile(fromSent, 0.99)) },
        p99RatioToFirstSize: first ? round(p99 / first.commitToAllAckedMs.p99, 2) : 1,
        controlPlane: {
          cpuMsPerChange: round((cpu.user + cpu.system) / 1000 / opts.changes),
          rssMB: round(mem.rss / 2 ** 20, 1), heapUsedMB: round(mem.heapUsed / 2 ** 20, 1),
          rssDeltaMBFromIdle: round((mem.rss - idle.rss) / 2 ** 20, 1),
        },
        subscriberProcessesCpuMsPerChange: round(subCpu / 1000 / opts.changes),
      });
      const r = results.at(-1)!;
      log(`push-latency: ${size} grpc-js + ${envoySubs} Envoy subscribers (${r.processes} processes): commit → all ACKed p50 ${r.commitToAllAckedMs.p50} ms, p99 ${r.commitToAllAckedMs.p99} ms (last push written ${r.commitToLastPushWrittenMs} ms, first ACK ${r.commitToFirstAckMs} ms, median ACK ${r.commitToMedianAckMs} ms); control plane ${r.controlPlane.cpuMsPerChange} ms CPU/change, rss ${r.controlPlane.rssMB} MB; subscriber processes ${r.subscriberProcessesCpuMsPerChange} ms CPU/change`);
      await stopSubscribers(children);
      children = [];
      await settled(envoySubs);
    }
    const last = results.at(-1)!;
    return {
      setup: {
        controlPlane: "startControlPlane in the bench process, SQLite :memory:, the 5-group RuleSet",
        envoy: opts.envoy ? `one sidecar (Envoy --concurrency 2, ${ENVOY_SUBSCRIBERS} subscribers) with filter.wasm` : "none",
        subscribers: `grpc-js clients, one HTTP/2 connection each, ACK on receipt, over up to ${opts.processes} child processes`,
        measure: `revision commit → the server's last ACK event of that version (all subscribers); 'putSent' from the client sending the PUT; ${opts.warmup} unmeasured changes first at each size`,
        idleControlPlane: { rssMB: round(idle.rss / 2 ** 20, 1), heapUsedMB: round(idle.heapUsed / 2 ** 20, 1) },
      },
      sizes: results,
      target: { p99Under250msAtLargest: { size: last.grpcSubscribers + last.envoySubscribers, value: last.commitToAllAckedMs.p99, met: last.commitToAllAckedMs.p99 < 250 } },
    };
  } finally {
    await stopSubscribers(children);
    await envoy?.stop();
    await server.close();
    store.close();
    await new Promise((r) => app ? app.close(r) : r(undefined));
  }
}

if (isMain(import.meta.url)) {
  runPushLatency().then((r) => {
    console.log(`  target p99 < 250 ms at ${r.target.p99Under250msAtLargest.size}: ${r.target.p99Under250msAtLargest.value} ms ${r.target.p99Under250msAtLargest.met ? "met" : "MISSED"}`);
    console.log(`  wrote ${writeResult("push-latency", r)}`);
    process.exit(0);
  }).catch((e) => { console.error(e); process.exit(1); });
}
