// bench/envoy-overhead: what Graylane costs inside a real Envoy, against Envoy without it, in one run.
//
//   wrk (CPU 1) → Envoy 1.40 (--concurrency 1, CPU 0) → nginx (1 worker, CPU 1; or Envoy's own
//   direct_response when nginx is missing)
//
// Envoy configurations, identical but for their HTTP filters (same listener, same routes on the
// route header with `graylane.service` metadata, same upstream):
//   (a) no filter                      — the baseline every ratio is against
//   (b) Graylane, outbound sidecar     — the realistic RuleSet (5 groups, 20 conditions, 3 regexes,
//                                        weights, trace memory on: a lookup per request)
//   (b') Graylane, inbound sidecar     — the same, where trace memory is also written per request
//   (c) a Wasm filter that does nothing (bench/assembly/noop-filter.ts on the same V8 runtime)
//   (d) Envoy's Lua filter copying the override header to the route header (and clearing the
//       route cache when it did)
// Every request has ~18 headers, a distinct trace id, one of 5 groups' hosts, every 10th an override.
//
// Throughput: wrk -t1 at 32 connections, each configuration in turn per round (rounds rotate the
// order), median over rounds; ratios to (a) paired per round. Envoy CPU per request:
// /proc/<pid>/stat utime+stime over the run ÷ requests. Latency at a fixed rate: wrk --latency, 4 connections each pausing a random 1-5 ms (Lua
// delay()) between requests — about 1,300 requests/s whatever the configuration, far from
// saturation, arrivals not in lockstep (a constant delay makes every connection fire in the same
// millisecond tick and measures queueing) — p50/p99 per configuration, deltas to (a) paired per
// round. wrk2 is not packaged; wrk's delay() is the closest at hand.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { envoyBin } from "../control-plane/src/mesh/envoy-process.js";
import { freePorts, httpGet, isMain, median, QUICK, round, sleep, writeResult } from "./support/common.js";
import { cpuSeconds, envoyStats, hasTaskset, startBenchEnvoy, type BenchEnvoy } from "./support/envoy.js";
import { buildNoopFilter } from "./support/noop.js";
import { benchRuleSet, GROUPS, UA_IPHONE_CHROME } from "./support/ruleset.js";

export interface OverheadOptions {
  /** Seconds per throughput run. */
  seconds: number;
  rounds: number;
  connections: number;
  /** Fixed-rate latency runs: each connection waits a random 1..2×delayMs-1 ms (mean ≈ delayMs) between requests. */
  latency: { seconds: number; connections: number; delayMs: number };
  warmupSeconds: number;
  envoyCpu: string;
  loadCpu: string;
  log?: (line: string) => void;
}

export const DEFAULTS: OverheadOptions = QUICK
  ? { seconds: 1, rounds: 1, connections: 16, latency: { seconds: 1, connections: 4, delayMs: 3 }, warmupSeconds: 1, envoyCpu: "0", loadCpu: "1" }
  : { seconds: 5, rounds: 8, connections: 32, latency: { seconds: 5, connections: 4, delayMs: 3 }, warmupSeconds: 3, envoyCpu: "0", loadCpu: "1" };

const WASM = resolve("filter/build/filter.wasm");
const ROUTE_HEADER = "x-graylane-route";

export interface ConfigSpec { id: string; name: string; filters: unknown[]; direction: "OUTBOUND" | "INBOUND" }

export function wasmFilter(name: string, path: string, vmId: string, configuration: string) {
  return {
    name: "envoy.filters.http.wasm",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
      config: {
        name, root_id: name,
        vm_config: { vm_id: vmId, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: path } } },
        configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: configuration },
      },
    },
  };
}

const LUA = `
function envoy_on_request(handle)
  local headers = handle:headers()
  local lane = headers:get("x-asm-prefer-tag")
  if lane ~= nil then
    headers:replace("${ROUTE_HEADER}", lane)
    handle:clearRouteCache()
  end
end
`;

/** BENCH_COMPARE_WASM=PATH adds another build of the filter (e.g. the one before a change) beside (b). */
const COMPARE_WASM = process.env.BENCH_COMPARE_WASM ? resolve(process.env.BENCH_COMPARE_WASM) : undefined;

export function specs(noopPath: string, ruleSetB64: string): ConfigSpec[] {
  const plugin = (extra: Record<string, unknown>) => JSON.stringify({ ruleSet: ruleSetB64, traceMemory: { slots: 65536, ttlSeconds: 60 }, ...extra });
  const compare: ConfigSpec[] = COMPARE_WASM
    ? [{ id: "b-compare", name: `Graylane (outbound sidecar), ${COMPARE_WASM}`, filters: [wasmFilter("graylane", COMPARE_WASM, "graylane-compare", plugin({}))], direction: "OUTBOUND" }]
    : [];
  return [
    { id: "a", name: "no filter", filters: [], direction: "OUTBOUND" },
    { id: "b", name: "Graylane (outbound sidecar)", filters: [wasmFilter("graylane", WASM, "graylane", plugin({}))], direction: "OUTBOUND" },
    { id: "b-inbound", name: "Graylane (inbound sidecar, trace memory written)", filters: [wasmFilter("graylane", WASM, "graylane", plugin({ service: "shop0-web" }))], direction: "INBOUND" },
    { id: "c", name: "no-op Wasm filter", filters: [wasmFilter("noop", noopPath, "noop", "{}")], direction: "OUTBOUND" },
    { id: "d", name: "Lua filter (override → route header)", filters: [{ name: "envoy.filters.http.lua", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", default_source_code: { inline_string: LUA } } }], direction: "OUTBOUND" },
    ...compare,
  ];
}

/** One listener on a free port, virtual hosts per group web service, lane routes, one upstream. */
export function envoyConfig(spec: ConfigSpec, upstreamPort: number | null) {
  const action = (lane: string) => upstreamPort === null
    ? { direct_response: { status: 200, body: { inline_string: `ok ${lane}\n` } } }
    : { route: { cluster: "upstream", timeout: "15s" } };
  const virtualHosts = Array.from({ length: GROUPS }, (_, i) => {
    const service = `shop${i}-web`;
    // As control-plane/src/mesh generates: the service, and the lane each route sends to.
    const metadata = (lane: string) => ({ filter_metadata: { graylane: { service, lane } } });
    return {
      name: service, domains: [service, `${service}.default.svc.cluster.local`],
      routes: [
        ...["gray", "canary"].map((lane) => ({ match: { prefix: "/", headers: [{ name: ROUTE_HEADER, string_match: { exact: lane } }] }, ...action(lane), metadata: metadata(lane) })),
        { match: { prefix: "/" }, ...action("base"), metadata: metadata("base") },
      ],
    };
  });
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [{
        name: "bench", address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
        enable_reuse_port: false, traffic_direction: spec.direction,
        filter_chains: [{ filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "bench", strip_any_host_port: true,
            route_config: { name: "bench", virtual_hosts: virtualHosts },
            http_filters: [...spec.filters, { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
          },
        }] }],
      }],
      clusters: upstreamPort === null ? [] : [{
        name: "upstream", type: "STATIC", connect_timeout: "1s",
        load_assignment: { cluster_name: "upstream", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: upstreamPort } } } }] }] },
      }],
    },
  };
}

// ---- nginx ----

export interface Upstream { kind: string; port: number | null; stop(): Promise<void> }

export async function startNginx(dir: string, cpu: string | undefined): Promise<Upstream> {
  const bin = spawnSync("sh", ["-c", "command -v nginx || ls /usr/sbin/nginx"], { encoding: "utf8" }).stdout.trim().split("\n")[0];
  if (!bin) return { kind: "Envoy direct_response (nginx not installed)", port: null, stop: async () => {} };
  const [port] = await freePorts(1);
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000; keepalive_timeout 300s;
  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    location / { default_type text/plain; return 200 "ok\\n"; }
  }
}
`);
  const [cmd, argv] = cpu !== undefined ? ["taskset", ["-c", cpu, bin, "-p", dir, "-c", conf, "-e", "stderr"]] : [bin, ["-p", dir, "-c", conf, "-e", "stderr"]];
  const p: ChildProcess = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  p.stderr!.on("data", (d) => (err += d));
  const end = Date.now() + 10_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    if (await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false)) break;
    if (Date.now() > end) throw new Error(`nginx did not start: ${err}`);
    await sleep(50);
  }
  const version = spawnSync(bin, ["-v"], { encoding: "utf8" }).stderr.trim().replace(/^nginx version: /, "");
  return {
    kind: `${version} (1 worker, return 200)`, port,
    stop: async () => {
      if (p.exitCode !== null) return;
      const exited = new Promise((r) => p.on("exit", r));
      p.kill("SIGQUIT");
      await Promise.race([exited, sleep(2000)]);
      if (p.exitCode === null) p.kill("SIGKILL");
    },
  };
}

// ---- wrk ----

export function wrkScript(delayMs: number | null): string {
  const hosts = Array.from({ length: GROUPS }, (_, i) => `"shop${i}-web.default.svc.cluster.local:8080"`).join(", ");
  return `
local prefix = "t"
local n = 0
local hosts = { ${hosts} }
init = function(args) if args[1] then prefix = args[1] end end
request = function()
  n = n + 1
  local h = {
    ["Host"] = hosts[((n + math.floor(n / 10)) % ${GROUPS}) + 1],
    ["User-Agent"] = "${UA_IPHONE_CHROME}",
    ["Accept"] = "application/json",
    ["Accept-Encoding"] = "gzip, deflate, br",
    ["Accept-Language"] = "en-US,en;q=0.9",
    ["x-request-id"] = prefix .. "-" .. n .. "-bench-trace",
    ["x-user-id"] = "user-" .. (n % 50000),
    ["Cookie"] = "session=abc123; uid=9" .. (n % 1000) .. "; theme=dark",
    ["x-forwarded-for"] = "10.1.2.3",
    ["x-forwarded-proto"] = "http",
    ["baggage"] = "tenant=acme,region=eu",
    ["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ["x-b3-sampled"] = "1",
    ["grayrelease"] = "version1",
    ["cache-control"] = "no-cache",
  }
  if n % 10 == 0 then h["x-asm-prefer-tag"] = "canary" end
  return wrk.format("GET", "/api/items/" .. n .. "?page=2&beta=0", h)
end
${delayMs === null ? "" : `delay = function() return math.random(1, ${2 * delayMs - 1}) end`}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%.1f,"p90":%.1f,"p99":%.1f,"p999":%.1f,"mean":%.2f,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
end
`;
}

export interface WrkResult {
  requests: number; durationUs: number; connect: number; read: number; write: number; status: number; timeout: number;
  p50: number; p90: number; p99: number; p999: number; mean: number; max: number;
}

let runSeq = 0;
export function wrk(url: string, script: string, connections: number, seconds: number, cpu: string | undefined): WrkResult {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "--latency", "-s", script, url, "--", `r${process.pid}x${++runSeq}`];
  const out = cpu !== undefined ? execFileSync("taskset", ["-c", cpu, "wrk", ...args], { encoding: "utf8" }) : execFileSync("wrk", args, { encoding: "utf8" });
  const line = out.split("\n").find((l) => l.startsWith("WRKJSON "));
  if (!line) throw new Error(`wrk printed no result:\n${out}`);
  return JSON.parse(line.slice(8)) as WrkResult;
}

// ---- the benchmark ----

interface Sample { rps: number; cpuUsPerRequest: number; envoyCpuUtil: number; requests: number }
interface LatencySample { rps: number; p50: number; p90: number; p99: number; p999: number; cpuUsPerRequest: number }

export async function runEnvoyOverhead(opts: OverheadOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const bin = envoyBin();
  if (spawnSync("sh", ["-c", "command -v wrk"]).status !== 0) throw new Error("wrk not found (apt-get install wrk)");
  const pin = hasTaskset();
  const envoyCpu = pin ? opts.envoyCpu : undefined;
  const loadCpu = pin ? opts.loadCpu : undefined;
  const dir = mkdtempSync(join(tmpdir(), "graylane-bench-overhead-"));
  const rs = benchRuleSet();
  const noop = buildNoopFilter(dir);
  const upstream = await startNginx(dir, loadCpu);
  const envoys = new Map<string, BenchEnvoy>();
  const all = specs(noop, rs.base64);
  try {
    for (const s of all) {
      envoys.set(s.id, await startBenchEnvoy(bin, `overhead-${s.id}`, envoyConfig(s, upstream.port), { concurrency: 1, cpus: envoyCpu, expectListeners: 1 }));
    }
    const scripts = { throughput: join(dir, "throughput.lua"), latency: join(dir, "latency.lua") };
    writeFileSync(scripts.throughput, wrkScript(null));
    writeFileSync(scripts.latency, wrkScript(opts.latency.delayMs));
    const url = (id: string) => `http://${envoys.get(id)!.listeners[0]}/`;

    // Sanity: each configuration answers 200, and Graylane really decided (its lane counters move).
    for (const s of all) {
      const r = await httpGet(url(s.id) + "api/items/1", { host: "shop1-web", "x-asm-prefer-tag": "canary", "x-request-id": "probe" });
      if (r.status !== 200) throw new Error(`config ${s.id}: HTTP ${r.status} ${r.body}`);
    }
    log(`envoy-overhead: upstream ${upstream.kind}; Envoy on CPU ${envoyCpu ?? "any"}, wrk${upstream.port ? " and nginx" : ""} on CPU ${loadCpu ?? "any"}`);
    for (const s of all) wrk(url(s.id), scripts.throughput, opts.connections, opts.warmupSeconds, loadCpu); // warm-up

    const through = new Map<string, Sample[]>(all.map((s) => [s.id, []]));
    const lat = new Map<string, LatencySample[]>(all.map((s) => [s.id, []]));
    const errors: string[] = [];
    const measure = (s: ConfigSpec, script: string, connections: number, seconds: number) => {
      const e = envoys.get(s.id)!;
      const c0 = cpuSeconds(e.pid);
      const w = wrk(url(s.id), script, connections, seconds, loadCpu);
      const cpu = cpuSeconds(e.pid) - c0;
      const bad = w.connect + w.read + w.write + w.status + w.timeout;
      if (bad > 0) errors.push(`${s.id}: ${JSON.stringify(w)}`);
      return { w, cpu };
    };
    for (let r = 0; r < opts.rounds; r++) {
      const order = all.map((_, i) => all[(i + r) % all.length]);
      for (const s of order) {
        const { w, cpu } = measure(s, scripts.throughput, opts.connections, opts.seconds);
        const secs = w.durationUs / 1e6;
        through.get(s.id)!.push({ rps: w.requests / secs, cpuUsPerRequest: (cpu / w.requests) * 1e6, envoyCpuUtil: cpu / secs, requests: w.requests });
      }
      for (const s of order) {
        const { w, cpu } = measure(s, scripts.latency, opts.latency.connections, opts.latency.seconds);
        lat.get(s.id)!.push({ rps: w.requests / (w.durationUs / 1e6), p50: w.p50, p90: w.p90, p99: w.p99, p999: w.p999, cpuUsPerRequest: (cpu / w.requests) * 1e6 });
      }
      log(`  round ${r + 1}/${opts.rounds}: ` + all.map((s) => `${s.id} ${Math.round(through.get(s.id)!.at(-1)!.rps)}/s p99 ${lat.get(s.id)!.at(-1)!.p99}µs`).join(", "));
    }
    if (errors.length) throw new Error(`wrk saw errors:\n${errors.join("\n")}`);

    // Envoy's own view of the filter: counters the filter defines, and wasm runtime stats.
    const wasmStats = Object.fromEntries([...(await envoyStats(envoys.get("b")!.admin, "wasm|graylane")).entries()].filter(([, v]) => v !== 0));

    const med = (id: string, f: (x: Sample) => number) => median(through.get(id)!.map(f));
    const medL = (id: string, f: (x: LatencySample) => number) => median(lat.get(id)!.map(f));
    // Ratios and deltas are paired per round (the same minute of the machine's life), then the median.
    const paired = (id: string, f: (x: Sample, a: Sample) => number) => median(through.get(id)!.map((x, r) => f(x, through.get("a")![r])));
    const pairedL = (id: string, f: (x: LatencySample, a: LatencySample) => number) => median(lat.get(id)!.map((x, r) => f(x, lat.get("a")![r])));
    const configs = all.map((s) => ({
      id: s.id, name: s.name,
      throughput: {
        rps: round(med(s.id, (x) => x.rps), 0),
        ratioToA: round(paired(s.id, (x, a) => x.rps / a.rps), 3),
        rpsPerRound: through.get(s.id)!.map((x) => round(x.rps, 0)),
        envoyCpuUtil: round(med(s.id, (x) => x.envoyCpuUtil), 3),
      },
      cpuPerRequest: {
        us: round(med(s.id, (x) => x.cpuUsPerRequest), 2),
        addedUs: round(paired(s.id, (x, a) => x.cpuUsPerRequest - a.cpuUsPerRequest), 2),
        ratioToA: round(paired(s.id, (x, a) => x.cpuUsPerRequest / a.cpuUsPerRequest), 3),
        usPerRound: through.get(s.id)!.map((x) => round(x.cpuUsPerRequest, 1)),
      },
      latency: {
        rps: round(medL(s.id, (x) => x.rps), 0),
        p50Us: round(medL(s.id, (x) => x.p50), 1), p99Us: round(medL(s.id, (x) => x.p99), 1), p999Us: round(medL(s.id, (x) => x.p999), 1),
        p50DeltaUs: round(pairedL(s.id, (x, a) => x.p50 - a.p50), 1), p99DeltaUs: round(pairedL(s.id, (x, a) => x.p99 - a.p99), 1),
        p50PerRound: lat.get(s.id)!.map((x) => x.p50),
        p99PerRound: lat.get(s.id)!.map((x) => x.p99),
        cpuUsPerRequest: round(medL(s.id, (x) => x.cpuUsPerRequest), 2),
      },
    }));
    const by = (id: string) => configs.find((c) => c.id === id)!;
    // The other build against (b), paired per round: positive = the other build costs more.
    const pairedToB = (f: (x: Sample) => number) => median(through.get("b-compare")!.map((x, r) => f(x) - f(through.get("b")![r])));
    const compared = COMPARE_WASM ? {
      wasm: COMPARE_WASM,
      cpuUsPerRequestOverB: round(pairedToB((x) => x.cpuUsPerRequest), 2),
      rpsRatioToB: round(median(through.get("b-compare")!.map((x, r) => x.rps / through.get("b")![r].rps)), 3),
    } : undefined;
    if (compared) log(`envoy-overhead: ${compared.wasm} against (b): ${compared.cpuUsPerRequestOverB} µs CPU per request, ${compared.rpsRatioToB} × its req/s (paired medians)`);
    const targets = {
      throughputAtLeast95PercentOfA: { value: by("b").throughput.ratioToA, met: by("b").throughput.ratioToA >= 0.95 },
      p99AddedAtMost20us: { value: by("b").latency.p99DeltaUs, met: by("b").latency.p99DeltaUs <= 20 },
      beatsLua: {
        value: { rpsRatioBToD: round(median(through.get("b")!.map((x, r) => x.rps / through.get("d")![r].rps)), 3), cpuUsB: by("b").cpuPerRequest.us, cpuUsD: by("d").cpuPerRequest.us },
        met: median(through.get("b")!.map((x, r) => x.rps / through.get("d")![r].rps)) > 1 && by("b").cpuPerRequest.addedUs < by("d").cpuPerRequest.addedUs,
      },
    };
    return {
      setup: {
        envoyCpu: envoyCpu ?? "unpinned", loadCpu: loadCpu ?? "unpinned", concurrency: 1, upstream: upstream.kind,
        loadGenerator: `wrk 4.1 -t1 (Lua request(): distinct x-request-id per request, 18 headers, 5 hosts, every 10th with the override header)`,
        throughput: { connections: opts.connections, seconds: opts.seconds, rounds: opts.rounds, statistic: "configurations interleaved (order rotated each round); req/s and CPU: median over rounds; ratios and deltas to (a): median of the per-round pairs" },
        latency: { method: `wrk --latency, ${opts.latency.connections} connections each waiting a random 1–${2 * opts.latency.delayMs - 1} ms (Lua delay(), mean ${opts.latency.delayMs} ms) between requests: a near-constant rate far below saturation, arrivals not in lockstep`, seconds: opts.latency.seconds },
        ruleSet: { groups: rs.ruleSet.groups.length, conditions: rs.conditions, regexDfas: rs.regexes, bytes: rs.bytes.length, traceMemorySlots: 65536 },
      },
      configs,
      targets,
      graylaneEnvoyStats: wasmStats,
      compared,
    };
  } finally {
    await Promise.all([...envoys.values()].map((e) => e.stop()));
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  runEnvoyOverhead().then((r) => {
    for (const c of r.configs) {
      console.log(`  (${c.id}) ${c.name.padEnd(48)} ${String(c.throughput.rps).padStart(7)} req/s ×${c.throughput.ratioToA.toFixed(3)}  CPU ${c.cpuPerRequest.us.toFixed(1)} µs/req (+${c.cpuPerRequest.addedUs.toFixed(1)})  p50 ${c.latency.p50Us} µs (${c.latency.p50DeltaUs >= 0 ? "+" : ""}${c.latency.p50DeltaUs})  p99 ${c.latency.p99Us} µs (${c.latency.p99DeltaUs >= 0 ? "+" : ""}${c.latency.p99DeltaUs}) at ${c.latency.rps}/s`);
    }
    for (const [k, t] of Object.entries(r.targets)) console.log(`  target ${k}: ${JSON.stringify(t.value)} ${t.met ? "met" : "MISSED"}`);
    console.log(`  wrote ${writeResult("envoy-overhead", r)}`);
  }).catch((e) => { console.error(e); process.exit(1); });
}
