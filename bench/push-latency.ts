// bench/push-latency: a lane-group change through the REST API until every filter ACKed it, at
// fleet sizes up to 10,000 subscribers, against a floor measured on the same fleet in the same run.
//
// The control plane as `graylane serve` runs it (startControlPlane, in this process, SQLite in
// memory) holding the realistic RuleSet (5 groups); one real Envoy sidecar with filter.wasm
// subscribed through its own gRPC cluster (every root context subscribes: main thread and 2
// workers); and the simulated fleet (support/push-fleet.ts): one HTTP/2 connection per filter, raw
// node:http2 in a few child processes, ACKing each push at once. Per size, `changes` changes (a
// group's canary weight), one after another: the time from the revision's commit to the last ACK
// the server received (its own "ack" events: the moment /v1/status calls the fleet "at version
// v"), p50/p99; the control plane's CPU per change (process.cpuUsage: the REST request, the commit,
// the compile and the push) and, with the same run's cost of a change with no subscriber taken
// off, per subscriber; memory per subscriber ((rss after a forced GC − the same before any fleet
// connected) ÷ N); the fleet's CPU.
//
// The floor (support/push-floor.ts, a process of its own), before each size: a bare node:http2
// server that writes the same pre-encoded RuleResponse to the same fleet and reads the ACKs off
// the wire; its CPU per push per subscriber, memory per subscriber and push → all ACKed. The control plane is held to
// ≤ 2 × the floor's CPU per subscriber, flat (±20%) from the first size to the last, ≤ 25 KB per
// subscriber and p99 < 250 ms at 10,000.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { startControlPlane, type ControlPlane } from "../control-plane/src/server/index.js";
import { sidecarConfig, type Topology } from "../control-plane/src/mesh/envoy-config.js";
import { envoyBin, startEnvoy, type RunningEnvoy } from "../control-plane/src/mesh/envoy-process.js";
import { openStore, type Store } from "../control-plane/src/store/index.js";
import { encodeRuleResponse } from "../control-plane/src/xds/protocol.js";
import { freePorts, isMain, median, percentile, QUICK, round, rssAfterGc, sleep, writeResult } from "./support/common.js";
import { benchGroup, benchGroupsJson } from "./support/ruleset.js";
import { Fleet } from "./support/fleet.js";
import { fork } from "node:child_process";
import { expectedInbound } from "./support/traffic-reports.js";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { grpcFrame } from "./support/grpc-frames.js";

export interface PushOptions {
  sizes: number[];
  changes: number;
  /** Changes pushed and ACKed before the measured ones at each size (JIT, buffers, first-time paths). */
  warmup: number;
  /** Child processes for the simulated fleet (fewer when a size has fewer subscribers). */
  processes: number;
  /** Also subscribe one real Envoy sidecar (concurrency 2: 3 subscribers). */
  envoy: boolean;
  /** Measure the floor (a bare node:http2 server) on the same fleet before each size. */
  floor: boolean;
  /** After the sizes: a fleet of `size` also reports its traffic every `everyMs` for `seconds`. */
  reports?: { size: number; everyMs: number; seconds: number };
  log?: (line: string) => void;
}

export const DEFAULTS: PushOptions = QUICK
  ? { sizes: [20, 60], changes: 5, warmup: 1, processes: 2, envoy: true, floor: true, reports: { size: 60, everyMs: 1000, seconds: 3 } }
  // 15,000: 5,000 pods whose Envoys run 2 workers, since each Envoy's main thread subscribes too.
  : { sizes: [1000, 3000, 10000, 15000], changes: 10, warmup: 2, processes: 4, envoy: true, floor: true, reports: { size: 10000, everyMs: 5000, seconds: 60 } };

/** Root contexts of an Envoy with --concurrency 2 that subscribe: the main thread's and 2 workers'. */
const ENVOY_SUBSCRIBERS = 3;

/** Targets (the issue): per-subscriber CPU ≤ 2 × the floor's, flat ±20%, ≤ 25 KB, p99 < 250 ms at 10,000. */
export const TARGETS = { cpuToFloor: 2, flatness: 0.2, kbPerSubscriber: 25, p99Ms: 250, p99AtSize: 10_000 };

interface Latency { p50: number; p99: number; max: number; all: number[] }

export interface FloorResult {
  /** CPU of the floor server per push ÷ subscribers, µs. */
  cpuUsPerSubscriber: number;
  pushToAllAckedMs: Latency;
  kbPerSubscriber: number;
  fleetCpuMsPerChange: number;
}

export interface PushSizeResult {
  fleetSubscribers: number;
  envoySubscribers: number;
  processes: number;
  changes: number;
  commitToAllAckedMs: Latency & { mean: number };
  /** Commit → the last RuleResponse written (the server's synchronous push loop), median. */
  commitToLastPushWrittenMs: number;
  /** Commit → the first and the median ACK received, medians over the changes. */
  commitToFirstAckMs: number;
  commitToMedianAckMs: number;
  putSentToAllAckedMs: { p50: number; p99: number };
  controlPlane: {
    cpuMsPerChange: number;
    /** (CPU per change − CPU per change with no fleet) ÷ subscribers, µs. */
    cpuUsPerSubscriber: number;
    rssMB: number;
    heapUsedMB: number;
    /** (rss after GC with the fleet − rss after GC before any fleet connected) ÷ subscribers. */
    kbPerSubscriber: number;
  };
  fleetCpuMsPerChange: number;
  floor?: FloorResult;
  /** Control plane ÷ floor, CPU per subscriber. */
  cpuToFloor?: number;
  /** Control plane CPU per subscriber ÷ the first size's. */
  cpuPerSubscriberToFirstSize: number;
}

const latency = (xs: number[]): Latency => ({ p50: round(median(xs)), p99: round(percentile(xs, 0.99)), max: round(xs.reduce((a, b) => Math.max(a, b), -Infinity)), all: xs.map((x) => round(x)) });
const cpuUs = (u: NodeJS.CpuUsage) => u.user + u.system;

/** PUSH_PROFILE=path: a V8 CPU profile of each size's measured changes (path-SIZE.cpuprofile). */
async function startProfile() {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  return {
    start: () => session.post("Profiler.start"),
    stop: async (path: string) => {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(path, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** The floor at one size: the same fleet against a bare node:http2 server (its own process) writing one pre-encoded response. */
async function measureFloor(size: number, ruleSetBytes: Uint8Array, version: string, opts: PushOptions): Promise<FloorResult> {
  const child = fork(resolve("bench/support/push-floor.ts"), [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" });
  const exited = new Promise<never>((_, rej) => child.once("exit", (code) => rej(new Error(`floor exited (${code})`))));
  exited.catch(() => {});
  const next = <T>(type: string) => Promise.race([exited, new Promise<T>((r) => {
    const on = (m: { type: string }) => { if (m.type === type) { child.off("message", on); r(m as T); } };
    child.on("message", on);
  })]);
  let fleet: Fleet | undefined;
  try {
    const port = next<{ port: number }>("port");
    child.send({ type: "start" });
    const measure = async () => { const m = next<{ cpuUs: number; rss: number; streams: number }>("measured"); child.send({ type: "measure" }); return m; };
    const idle = await measure();
    fleet = await Fleet.spawn(`127.0.0.1:${(await port).port}`, size, opts.processes);
    for (const end = Date.now() + 60_000; (await measure()).streams < size;) {
      if (Date.now() > end) throw new Error(`floor: fewer than ${size} streams`);
      await sleep(50);
    }
    // Pre-encoded, as the control plane encodes a snapshot once: one nonce per push, like its own.
    const frames = Array.from({ length: opts.warmup + opts.changes }, (_, k) => grpcFrame(encodeRuleResponse({ version, nonce: `floor-${k}`, ruleSetBytes })));
    const times: number[] = [];
    let cpu0 = 0;
    let fleet0 = 0;
    for (let k = 0; k < frames.length; k++) {
      if (k === opts.warmup) { fleet0 = await fleet.cpuUs(); cpu0 = (await measure()).cpuUs; }
      const pushed = next<{ ms: number }>("pushed");
      child.send({ type: "push", frame: frames[k]! });
      const { ms } = await pushed;
      if (k >= opts.warmup) times.push(ms);
      await sleep(20);
    }
    const end = await measure();
    const fleetCpu = (await fleet.cpuUs()) - fleet0;
    return {
      cpuUsPerSubscriber: round((end.cpuUs - cpu0) / opts.changes / size),
      pushToAllAckedMs: latency(times),
      kbPerSubscriber: round((end.rss - idle.rss) / 1024 / size, 1),
      fleetCpuMsPerChange: round(fleetCpu / 1000 / opts.changes),
    };
  } finally {
    await fleet?.stop();
    child.send("stop");
  }
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
  let fleet: Fleet | undefined;
  try {
    const put = async (body: unknown) => {
      const send = () => fetch(`${server.url}/v1/lanegroups/${(body as { name: string }).name}`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "bench" }, body: JSON.stringify(body) });
      const res = await send().catch(send);
      const text = await res.text();
      if (res.status >= 300) throw new Error(`PUT ${res.status}: ${text}`);
    };
    for (const g of benchGroupsJson()) await put(g);

    const envoySubs = opts.envoy ? ENVOY_SUBSCRIBERS : 0;
    /** Resolves when `want` live subscribers all ACKed the served version. */
    const settled = async (want: number, timeoutMs = 120_000) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const st = grpc.status();
        const live = st.nodes.flatMap((n) => n.subscribers.filter((s) => s.connected));
        if (live.length === want && live.every((s) => s.ackedVersion === st.version)) return;
        if (Date.now() > end) throw new Error(`subscribers: ${live.length} live (want ${want}), ${live.filter((s) => s.ackedVersion === st.version).length} at ${st.version}`);
        await sleep(50);
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

    let step = 0;
    /** One change: PUT a group's new canary weight, wait until `want` subscribers ACKed it. */
    const change = async (want: number) => {
      step++;
      let lastAck = 0;
      let pushedAt = 0;
      const ackTimes: number[] = [];
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
        if (ackTimes.length === want) done();
      });
      const sentAt = performance.now();
      try {
        // 5 groups take turns; each change gives one group's canary a weight it never had.
        await put(benchGroup(step % 5, 10 + step / 100));
        version = grpc.cache.current().version;
        if (want === 0) done();
        const timer = setTimeout(done, 60_000);
        await all;
        clearTimeout(timer);
      } finally {
        offAck();
      }
      if (ackTimes.length !== want) throw new Error(`change ${step}: ${ackTimes.length} of ${want} ACKed ${version} within 60 s`);
      const committedAt = lastCommitAt;
      return { fromCommit: lastAck - committedAt, fromSent: lastAck - sentAt, lastPush: pushedAt - committedAt, firstAck: ackTimes[0]! - committedAt, medianAck: median(ackTimes) - committedAt };
    };

    // The cost of a change that reaches nobody (the REST request, the commit, the compile): taken
    // off each size's CPU per change to give its cost per subscriber.
    for (let i = 0; i < opts.warmup; i++) await change(envoySubs);
    let cpu0 = process.cpuUsage();
    for (let i = 0; i < opts.changes; i++) { await change(envoySubs); await sleep(20); }
    const fixedCpuUs = cpuUs(process.cpuUsage(cpu0)) / opts.changes;
    const idleRss = rssAfterGc();
    log(`push-latency: a change with no fleet costs the control plane ${round(fixedCpuUs / 1000)} ms CPU`);

    /**
     * The fleet of `size` reporting every everyMs for `seconds` (as 10,000 filters every 5 s: 2,000
     * reports a second): per interval the reports answered and still in flight (a growing backlog
     * shows there), their latency, the control plane's CPU, changes pushed meanwhile, GET
     * /v1/traffic timed; then the reports stop and every group's inbound total must be exactly
     * what the filters' last answered reports say.
     */
    const measureReports = async (size: number, r: { everyMs: number; seconds: number }) => {
      fleet = await Fleet.spawn(`127.0.0.1:${grpcPort}`, size, opts.processes, 4);
      const want = size + envoySubs;
      await settled(want);
      fleet.startReports(r.everyMs);
      const traffic = async (group: string) => {
        const t0 = performance.now();
        // A kept-alive socket the server closed meanwhile (ECONNRESET) is retried once, as a client would.
        const get = () => fetch(`${server.url}/v1/traffic?group=${group}&window=1h`);
        const res = await get().catch(get);
        const body = (await res.json()) as { services: Array<{ requests: number }> };
        return { ms: performance.now() - t0, inbound: body.services.reduce((a, x) => a + x.requests, 0) };
      };
      const eld = monitorEventLoopDelay({ resolution: 10 });
      eld.enable();
      const profile = process.env.PUSH_PROFILE ? await startProfile() : undefined;
      await profile?.start();
      const c0 = process.cpuUsage();
      const fleet0 = await fleet.cpuUs();
      const t0 = performance.now();
      const windows: Array<{ answered: number; inFlight: number; failed: number }> = [];
      const latencies: number[] = [];
      const getMs: number[] = [];
      const pushes: number[] = [];
      let prev = { answered: 0 };
      let nextWindow = t0 + r.everyMs;
      const end = t0 + r.seconds * 1000;
      while (performance.now() < end) {
        if (pushes.length < opts.changes) pushes.push((await change(want)).fromCommit);
        getMs.push((await traffic("shop0")).ms);
        await sleep(500);
        if (performance.now() >= nextWindow) {
          nextWindow += r.everyMs;
          const st = await fleet.reportStats();
          latencies.push(...st.latenciesMs);
          windows.push({ answered: st.answered - prev.answered, inFlight: st.inFlight, failed: st.failed });
          prev = st;
        }
      }
      const elapsed = (performance.now() - t0) / 1000;
      const cpu = cpuUs(process.cpuUsage(c0));
      const fleetCpu = (await fleet.cpuUs()) - fleet0;
      eld.disable();
      await profile?.stop(`${process.env.PUSH_PROFILE}-reports-${size}.cpuprofile`);
      fleet.stopReports();
      let st = await fleet.reportStats();
      for (const until = Date.now() + 30_000; st.inFlight > 0 && Date.now() < until;) { await sleep(100); st = await fleet.reportStats(); }
      latencies.push(...st.latenciesMs);
      const expected = expectedInbound(st.sumOfLast);
      const got: Record<string, number> = {};
      for (const g of Object.keys(expected)) got[g] = (await traffic(g)).inbound;
      const answered = st.answered;
      await fleet.stop();
      fleet = undefined;
      await settled(envoySubs);
      const inFlightByWindow = windows.map((w) => w.inFlight);
      const result = {
        subscribers: size, everyMs: r.everyMs, seconds: round(elapsed, 1),
        reportsPerSecond: round(answered / elapsed, 1), answered, failed: st.failed, reconnects: st.reconnects,
        // Not sent: the filter's previous report was still unanswered (one at a time, as the filter does).
        skipped: st.skipped, offeredPerSecond: round(size / (r.everyMs / 1000), 1),
        reportLatencyMs: { p50: round(median(latencies)), p99: round(percentile(latencies, 0.99)), max: round(latencies.reduce((a, b) => Math.max(a, b), 0)) },
        controlPlaneCpuPerSecondMs: round(cpu / 1000 / elapsed), controlPlaneCpuUsPerReport: round(cpu / answered),
        fleetCpuPerSecondMs: round(fleetCpu / 1000 / elapsed),
        eventLoopDelayMs: { p50: round(eld.percentile(50) / 1e6), p99: round(eld.percentile(99) / 1e6), max: round(eld.max / 1e6) },
        answeredByWindow: windows.map((w) => w.answered), inFlightByWindow,
        // No backlog: every offered report answered within its interval (none held back), in flight
        // at each interval's end below a fifth of the fleet.
        noBacklog: st.skipped === 0 && inFlightByWindow.every((x) => x < size / 5),
        pushWhileReportingMs: latency(pushes),
        trafficGetMs: latency(getMs),
        inboundExpected: expected, inboundCounted: got,
        exact: Object.keys(expected).every((g) => got[g] === expected[g]),
      };
      log(`push-latency reports: ${size} filters every ${r.everyMs} ms for ${result.seconds} s: ${result.reportsPerSecond} reports/s, p50 ${result.reportLatencyMs.p50} ms p99 ${result.reportLatencyMs.p99} ms, ${result.failed} failed, ${result.reconnects} reconnects, ${result.skipped} not sent (previous unanswered); control plane ${result.controlPlaneCpuPerSecondMs} ms CPU/s (${result.controlPlaneCpuUsPerReport} µs per report), event loop delay p99 ${result.eventLoopDelayMs.p99} ms; in flight per interval ${inFlightByWindow.join(", ")}; push meanwhile p50 ${result.pushWhileReportingMs.p50} ms p99 ${result.pushWhileReportingMs.p99} ms; GET /v1/traffic p99 ${result.trafficGetMs.p99} ms; totals ${result.exact ? "exact" : `NOT exact: ${JSON.stringify({ expected, got })}`}`);
      return result;
    };

    const results: PushSizeResult[] = [];
    for (const size of opts.sizes) {
      const snap = grpc.cache.current();
      const floor = opts.floor ? await measureFloor(size, snap.bytes, snap.version, opts) : undefined;
      if (floor) log(`push-latency floor: ${size} subscribers: ${floor.cpuUsPerSubscriber} µs CPU per push per subscriber, push → all ACKed p50 ${floor.pushToAllAckedMs.p50} ms p99 ${floor.pushToAllAckedMs.p99} ms, ${floor.kbPerSubscriber} KB per subscriber; fleet ${floor.fleetCpuMsPerChange} ms CPU/change`);

      fleet = await Fleet.spawn(`127.0.0.1:${grpcPort}`, size, opts.processes);
      const want = size + envoySubs;
      await settled(want);
      const runs: Array<Awaited<ReturnType<typeof change>>> = [];
      let fleet0 = 0;
      const profile = process.env.PUSH_PROFILE ? await startProfile() : undefined;
      for (let i = -opts.warmup; i < opts.changes; i++) {
        if (i === 0) { fleet0 = await fleet.cpuUs(); cpu0 = process.cpuUsage(); await profile?.start(); }
        const r = await change(want);
        await sleep(20);
        if (i >= 0) runs.push(r);
      }
      const cpu = cpuUs(process.cpuUsage(cpu0)) / opts.changes;
      await profile?.stop(`${process.env.PUSH_PROFILE}-${size}.cpuprofile`);
      const fleetCpu = ((await fleet.cpuUs()) - fleet0) / opts.changes;
      const mem = process.memoryUsage();
      const rss = rssAfterGc();
      const fromCommit = runs.map((r) => r.fromCommit);
      const perSub = (cpu - fixedCpuUs) / want;
      const first = results[0];
      results.push({
        fleetSubscribers: size, envoySubscribers: envoySubs, processes: fleet.processes, changes: opts.changes,
        commitToAllAckedMs: { ...latency(fromCommit), mean: round(fromCommit.reduce((a, b) => a + b, 0) / fromCommit.length) },
        commitToLastPushWrittenMs: round(median(runs.map((r) => r.lastPush))),
        commitToFirstAckMs: round(median(runs.map((r) => r.firstAck))),
        commitToMedianAckMs: round(median(runs.map((r) => r.medianAck))),
        putSentToAllAckedMs: { p50: round(median(runs.map((r) => r.fromSent))), p99: round(percentile(runs.map((r) => r.fromSent), 0.99)) },
        controlPlane: {
          cpuMsPerChange: round(cpu / 1000),
          cpuUsPerSubscriber: round(perSub),
          rssMB: round(rss / 2 ** 20, 1), heapUsedMB: round(mem.heapUsed / 2 ** 20, 1),
          kbPerSubscriber: round((rss - idleRss) / 1024 / want, 1),
        },
        fleetCpuMsPerChange: round(fleetCpu / 1000),
        floor,
        cpuToFloor: floor ? round(perSub / floor.cpuUsPerSubscriber, 2) : undefined,
        cpuPerSubscriberToFirstSize: first ? round(perSub / first.controlPlane.cpuUsPerSubscriber, 2) : 1,
      });
      const r = results.at(-1)!;
      log(`push-latency: ${size} + ${envoySubs} Envoy subscribers (${r.processes} processes): commit → all ACKed p50 ${r.commitToAllAckedMs.p50} ms, p99 ${r.commitToAllAckedMs.p99} ms (last push written ${r.commitToLastPushWrittenMs} ms, first ACK ${r.commitToFirstAckMs} ms, median ACK ${r.commitToMedianAckMs} ms); control plane ${r.controlPlane.cpuMsPerChange} ms CPU/change = ${r.controlPlane.cpuUsPerSubscriber} µs per subscriber${r.cpuToFloor !== undefined ? ` (${r.cpuToFloor} × the floor)` : ""}, ${r.controlPlane.kbPerSubscriber} KB per subscriber, rss ${r.controlPlane.rssMB} MB; fleet ${r.fleetCpuMsPerChange} ms CPU/change`);
      await fleet.stop();
      fleet = undefined;
      await settled(envoySubs);
    }
    const reports = opts.reports ? await measureReports(opts.reports.size, opts.reports) : undefined;
    const last = results.at(-1)!;
    const at = results.find((r) => r.fleetSubscribers + r.envoySubscribers >= TARGETS.p99AtSize) ?? last;
    const perSub = results.map((r) => r.cpuPerSubscriberToFirstSize);
    return {
      setup: {
        controlPlane: "startControlPlane in the bench process, SQLite :memory:, the 5-group RuleSet",
        envoy: opts.envoy ? `one sidecar (Envoy --concurrency 2, ${ENVOY_SUBSCRIBERS} subscribers) with filter.wasm` : "none",
        fleet: `simulated filters, one HTTP/2 connection each (raw node:http2, pre-encoded hello and ACKs), over up to ${opts.processes} child processes`,
        floor: opts.floor ? "a bare node:http2 server writing the same pre-encoded RuleResponse to the same fleet, reading the ACKs' framing" : "not measured",
        measure: `revision commit → the server's last ACK event of that version (all subscribers); 'putSent' from the client sending the PUT; ${opts.warmup} unmeasured changes first at each size; per subscriber = (CPU per change − ${round(fixedCpuUs / 1000)} ms, a change with no fleet) ÷ subscribers`,
        fixedCpuMsPerChange: round(fixedCpuUs / 1000),
        idleControlPlaneRssMB: round(idleRss / 2 ** 20, 1),
      },
      sizes: results,
      reports,
      targets: {
        cpuToFloor: { max: TARGETS.cpuToFloor, values: results.map((r) => r.cpuToFloor ?? null), met: results.every((r) => r.cpuToFloor !== undefined && r.cpuToFloor > 0 && r.cpuToFloor <= TARGETS.cpuToFloor) },
        flat: { within: TARGETS.flatness, values: perSub, met: perSub.every((x) => Math.abs(x - 1) <= TARGETS.flatness) },
        kbPerSubscriber: { max: TARGETS.kbPerSubscriber, values: results.map((r) => r.controlPlane.kbPerSubscriber), met: results.every((r) => r.controlPlane.kbPerSubscriber <= TARGETS.kbPerSubscriber) },
        p99: { size: at.fleetSubscribers + at.envoySubscribers, maxMs: TARGETS.p99Ms, value: at.commitToAllAckedMs.p99, met: at.commitToAllAckedMs.p99 < TARGETS.p99Ms },
        ...(reports && {
          trafficExact: { met: reports.exact },
          trafficUnder100ms: { maxMs: 100, value: reports.trafficGetMs.p99, met: reports.trafficGetMs.p99 < 100 },
          noBacklog: { inFlightByWindow: reports.inFlightByWindow, met: reports.noBacklog },
        }),
      },
    };
  } finally {
    await fleet?.stop();
    await envoy?.stop();
    await server.close();
    store.close();
    await new Promise((r) => app ? app.close(r) : r(undefined));
  }
}

if (isMain(import.meta.url)) {
  // PUSH_SIZES=1000,3000 and PUSH_REPORTS=5000 (0: none) override the sizes (a shorter run).
  const sizes = process.env.PUSH_SIZES?.split(",").map(Number);
  const reportsAt = process.env.PUSH_REPORTS === undefined ? undefined : Number(process.env.PUSH_REPORTS);
  const reports = reportsAt === undefined ? DEFAULTS.reports : reportsAt > 0 ? { ...DEFAULTS.reports!, size: reportsAt } : undefined;
  runPushLatency({ ...DEFAULTS, ...(sizes && { sizes }), reports }).then((r) => {
    for (const [k, t] of Object.entries(r.targets)) console.log(`  target ${k}: ${JSON.stringify(t)} ${t.met ? "met" : "MISSED"}`);
    console.log(`  wrote ${writeResult("push-latency", r)}`);
    process.exit(0);
  }).catch((e) => { console.error(e); process.exit(1); });
}
