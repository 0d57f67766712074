// bench/envoy-overhead: what Graylane costs inside a real Envoy, against Envoy without it and against
// the floor (a C filter doing the same work on the raw ABI), in one run.
//
//   wrk (CPU 1) → Envoy 1.40 (--concurrency 1, CPU 0) → nginx (1 worker, CPU 1; or Envoy's own
//   direct_response when nginx is missing)
//
// Envoy configurations, identical but for their HTTP filters (same listener, same routes on the
// route header with `graylane.service` metadata, same upstream):
//   (a) no filter                      — the baseline every added cost is against
//   (b) Graylane, outbound sidecar     — the realistic RuleSet (5 groups, 20 conditions, 3 regexes,
//                                        weights, trace memory on: a lookup per request), with the
//                                        plugin configuration control-plane/src/mesh generates
//   (b-inbound) Graylane, inbound sidecar — the same, where trace memory is also written per request
//   (c) a Wasm filter that does nothing (bench/assembly/noop-filter.ts on the same V8 runtime)
//   (d) Envoy's Lua filter copying the override header to the route header (and clearing the
//       route cache when it did)
//   (p-min, p-calls, p-in-min, p-in-calls, p-nogroup) the C peers (bench/peers/lane_peer.c): the
//       same decision with the minimal calls, with exactly Graylane's calls (outbound, inbound),
//       and the minimum a request of no group needs. Before timing, an echo upstream checks that
//       every peer sends the same lane, route and baggage headers as Graylane, and that Envoy
//       re-routes the same requests.
// Group traffic: ~18 headers, a distinct trace id per request, one of 5 groups' hosts, every 10th an
// override. No-group traffic (a, b, p-nogroup): a host of no group, every 10th with a stray route
// header to remove.
//
// Throughput: wrk -t1 at 32 connections, each run in turn per round: runs compared with each other
// stand next to each other (RUN_ORDER), and odd rounds go through them backwards, so a drift of
// the machine's speed within a round hits both sides of a pair alike over two rounds.
// Envoy CPU per request: /proc/<pid>/stat utime+stime over the run ÷ requests; added CPU = minus (a)'s
// in the same round with the same traffic. Ratios of added CPU are paired per round; the summary
// gives their median and a bootstrap 95% interval. Latency at a fixed rate: wrk --latency, 4
// connections each pausing a random 1-5 ms (Lua delay()) between requests — about 1,300
// requests/s whatever the configuration, far from saturation, arrivals not in lockstep — p50/p99
// per configuration, deltas to (a) paired per round. wrk2 is not packaged; wrk's delay() is the
// closest at hand.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { envoyBin } from "../control-plane/src/mesh/envoy-process.js";
import { wasmPlugins } from "../control-plane/src/mesh/istio.js";
import { bootstrapMedian, freePorts, httpGet, isMain, median, QUICK, round, sign, sleep, writeResult } from "./support/common.js";
import { cpuSeconds, envoyStats, hasTaskset, startBenchEnvoy, type BenchEnvoy } from "./support/envoy.js";
import { buildNoopFilter } from "./support/noop.js";
import { buildPeer, hasClang, type PeerBuild } from "./support/peers.js";
import { countCallsPerRequest } from "./support/call-counts.js";
import { benchGroupsJson, benchRequest, benchRuleSet, GROUPS, noGroupRequest, OTHER_HOST, parseGroups, ROUTE_HEADER, UA_IPHONE_CHROME } from "./support/ruleset.js";

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
  : { seconds: 2, rounds: 16, connections: 32, latency: { seconds: 2, connections: 4, delayMs: 3 }, warmupSeconds: 2, envoyCpu: "0", loadCpu: "1" };

const WASM = resolve("filter/build/filter.wasm");
/** The local service of the sidecar the bench plays (its WasmPlugin's configuration). */
const LOCAL_SERVICE = "shop0-web";

export type Traffic = "group" | "nogroup";
export interface ConfigSpec {
  id: string; name: string; filters: unknown[]; direction: "OUTBOUND" | "INBOUND";
  /** The traffic each round sends it (its added CPU is against (a) with the same traffic). */
  traffic: Traffic[];
  /** Also measured at a fixed rate (latency). */
  latency: boolean;
  /** C peer build, when it is one. */
  peer?: PeerBuild;
}

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

/**
 * The plugin configuration Istio's WasmPlugin for the local service carries (mesh/istio.ts), as
 * generated: service, node, the initial RuleSet; trace memory at its defaults. Without `cluster`:
 * the bench has no control plane (the filter would retry a stream to a missing cluster every second).
 */
export function generatedPluginConfig(): string {
  const plugin = wasmPlugins(parseGroups(benchGroupsJson()), { wasm: { url: "oci://bench/graylane:bench" }, gateway: false })
    .find((p) => p.metadata.name === `graylane-${LOCAL_SERVICE}`);
  if (!plugin) throw new Error(`no WasmPlugin for ${LOCAL_SERVICE}`);
  const { cluster: _cluster, ...config } = plugin.spec.pluginConfig as Record<string, unknown>;
  return JSON.stringify(config);
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

export const PEERS: Array<{ id: string; build: PeerBuild; name: string; direction: "OUTBOUND" | "INBOUND"; traffic: Traffic[]; latency: boolean }> = [
  { id: "p-min", build: "out-min", name: "C peer, minimal work (outbound)", direction: "OUTBOUND", traffic: ["group"], latency: true },
  { id: "p-calls", build: "out-calls", name: "C peer, Graylane's calls (outbound)", direction: "OUTBOUND", traffic: ["group"], latency: true },
  { id: "p-in-min", build: "in-min", name: "C peer, minimal work (inbound, trace memory written)", direction: "INBOUND", traffic: ["group"], latency: false },
  { id: "p-in-calls", build: "in-calls", name: "C peer, Graylane's calls (inbound)", direction: "INBOUND", traffic: ["group"], latency: false },
  { id: "p-nogroup", build: "nogroup", name: "C peer, the minimum for a request of no group", direction: "OUTBOUND", traffic: ["nogroup"], latency: false },
];

export function specs(noopPath: string, pluginConfig: string, peers: Map<PeerBuild, string>): ConfigSpec[] {
  const compare: ConfigSpec[] = COMPARE_WASM
    ? [
      { id: "b-compare", name: `Graylane (outbound sidecar), ${COMPARE_WASM}`, filters: [wasmFilter("graylane", COMPARE_WASM, "graylane-compare", pluginConfig)], direction: "OUTBOUND", traffic: ["group", "nogroup"], latency: true },
      { id: "b-compare-inbound", name: `Graylane (inbound sidecar), ${COMPARE_WASM}`, filters: [wasmFilter("graylane", COMPARE_WASM, "graylane-compare", pluginConfig)], direction: "INBOUND", traffic: ["group"], latency: false },
    ]
    : [];
  return [
    { id: "a", name: "no filter", filters: [], direction: "OUTBOUND", traffic: ["group", "nogroup"], latency: true },
    { id: "b", name: "Graylane (outbound sidecar)", filters: [wasmFilter("graylane", WASM, "graylane", pluginConfig)], direction: "OUTBOUND", traffic: ["group", "nogroup"], latency: true },
    { id: "b-inbound", name: "Graylane (inbound sidecar, trace memory written)", filters: [wasmFilter("graylane", WASM, "graylane", pluginConfig)], direction: "INBOUND", traffic: ["group"], latency: false },
    { id: "c", name: "no-op Wasm filter", filters: [wasmFilter("noop", noopPath, "noop", "{}")], direction: "OUTBOUND", traffic: ["group"], latency: true },
    { id: "d", name: "Lua filter (override → route header)", filters: [{ name: "envoy.filters.http.lua", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua", default_source_code: { inline_string: LUA } } }], direction: "OUTBOUND", traffic: ["group"], latency: true },
    ...PEERS.filter((p) => peers.has(p.build)).map((p): ConfigSpec => ({
      id: p.id, name: p.name, filters: [wasmFilter(`peer-${p.build}`, peers.get(p.build)!, `peer-${p.build}`, "{}")], direction: p.direction, traffic: p.traffic, latency: p.latency, peer: p.build,
    })),
    ...compare,
  ];
}

/**
 * One listener on a free port, virtual hosts per group web service (lane routes) and a catch-all
 * for other hosts, one upstream. `echo`: each route also adds `x-bench-route: <its lane>` to the
 * request, so an echo upstream shows which route Envoy picked.
 */
export function envoyConfig(spec: ConfigSpec, upstreamPort: number | null, echo = false) {
  const action = (lane: string) => upstreamPort === null
    ? { direct_response: { status: 200, body: { inline_string: `ok ${lane}\n` } } }
    : { route: { cluster: "upstream", timeout: "15s" } };
  const tag = (lane: string) => (echo ? { request_headers_to_add: [{ header: { key: "x-bench-route", value: lane } }] } : {});
  const virtualHosts = Array.from({ length: GROUPS }, (_, i) => {
    const service = `shop${i}-web`;
    // As control-plane/src/mesh generates: the service, and the lane each route sends to.
    const metadata = (lane: string) => ({ filter_metadata: { graylane: { service, lane } } });
    return {
      name: service, domains: [service, `${service}.default.svc.cluster.local`],
      routes: [
        ...["gray", "canary"].map((lane) => ({ match: { prefix: "/", headers: [{ name: ROUTE_HEADER, string_match: { exact: lane } }] }, ...action(lane), metadata: metadata(lane), ...tag(lane) })),
        { match: { prefix: "/" }, ...action("base"), metadata: metadata("base"), ...tag("base") },
      ],
    };
  });
  virtualHosts.push({ name: "other", domains: ["*"], routes: [{ match: { prefix: "/" }, ...action("other"), ...tag("other") } as never] });
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

/** The wrk Lua script of `traffic`: the group requests of bench/support/ruleset.ts, or a host of no group. */
export function wrkScript(delayMs: number | null, traffic: Traffic = "group"): string {
  const hosts = traffic === "group"
    ? Array.from({ length: GROUPS }, (_, i) => `"shop${i}-web.default.svc.cluster.local:8080"`).join(", ")
    : `"${OTHER_HOST}:8080"`;
  const tenth = traffic === "group" ? `h["x-asm-prefer-tag"] = "canary"` : `h["${ROUTE_HEADER}"] = "canary"`;
  return `
local prefix = "t"
local n = 0
local hosts = { ${hosts} }
init = function(args) if args[1] then prefix = args[1] end end
request = function()
  n = n + 1
  local h = {
    ["Host"] = hosts[((n + math.floor(n / 10)) % #hosts) + 1],
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
  if n % 10 == 0 then ${tenth} end
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

// ---- the same headers, checked through real Envoys ----

/** An upstream that answers every request with the headers it received, as JSON. */
async function startEcho(): Promise<{ port: number; stop(): Promise<void> }> {
  const server = createServer((req, res) => { res.setHeader("content-type", "application/json"); res.end(JSON.stringify(req.headers)); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { port, stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

/** Request i of `traffic` as client headers (Host from :authority), and its path. */
function clientRequest(i: number, traffic: Traffic): { path: string; headers: Record<string, string> } {
  const pairs = traffic === "group" ? benchRequest(i) : noGroupRequest(i);
  const pseudo = Object.fromEntries(pairs.filter(([k]) => k.startsWith(":")));
  return { path: pseudo[":path"], headers: { ...Object.fromEntries(pairs.filter(([k]) => !k.startsWith(":"))), host: pseudo[":authority"] } };
}

const SEEN = ["x-graylane-lane", ROUTE_HEADER, "baggage", "x-bench-route"];

/**
 * Every C peer against Graylane on the same `n` requests, each through its own Envoy to an echo
 * upstream: the lane, route and baggage headers the upstream sees, and the route Envoy picked
 * (x-bench-route), must be the same. Throws on the first difference; returns what was compared.
 */
export async function verifySameHeaders(bin: string, all: ConfigSpec[], n: number): Promise<Array<{ peer: string; against: string; traffic: Traffic; requests: number; rerouted: number }>> {
  const pairs = all.filter((s) => s.peer).map((p) => ({
    peer: p, traffic: p.traffic[0], against: all.find((s) => s.id === (p.direction === "INBOUND" ? "b-inbound" : "b"))!,
  }));
  const echo = await startEcho();
  const envoys: BenchEnvoy[] = [];
  try {
    const seen = async (spec: ConfigSpec, traffic: Traffic) => {
      const e = await startBenchEnvoy(bin, `verify-${spec.id}`, envoyConfig(spec, echo.port, true), { concurrency: 1, expectListeners: 1 });
      envoys.push(e);
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const { path, headers } = clientRequest(i, traffic);
        const r = await httpGet(`http://${e.listeners[0]}${path}`, headers);
        if (r.status !== 200) throw new Error(`verify ${spec.id}: HTTP ${r.status} ${r.body}`);
        const got = JSON.parse(r.body) as Record<string, string>;
        out.push(JSON.stringify(SEEN.map((k) => got[k] ?? null)));
      }
      return out;
    };
    const results = [];
    const cache = new Map<string, string[]>();
    for (const { peer, traffic, against } of pairs) {
      const key = `${against.id}/${traffic}`;
      if (!cache.has(key)) cache.set(key, await seen(against, traffic));
      const want = cache.get(key)!;
      const got = await seen(peer, traffic);
      const i = want.findIndex((w, k) => w !== got[k]);
      if (i >= 0) throw new Error(`C peer ${peer.id} and Graylane (${against.id}) differ on ${traffic} request ${i}: upstream saw ${got[i]}, want ${want[i]} (${SEEN.join(", ")})`);
      const rerouted = want.filter((w) => { const v = JSON.parse(w) as Array<string | null>; return v[3] !== "base" && v[3] !== "other"; }).length;
      results.push({ peer: peer.id, against: against.id, traffic, requests: n, rerouted });
    }
    return results;
  } finally {
    await Promise.all(envoys.map((e) => e.stop()));
    await echo.stop();
  }
}

// ---- the benchmark ----

/** The order of runs in a round: each ratio's runs adjacent, the baselines (a) among them. */
const RUN_ORDER = [
  "p-nogroup/nogroup", "b/nogroup", "a/nogroup", "b-compare/nogroup",
  "p-min/group", "p-calls/group", "b/group", "a/group", "b-compare/group",
  "b-inbound/group", "p-in-calls/group", "p-in-min/group", "b-compare-inbound/group",
  "c/group", "d/group",
];
const runRank = (key: string) => { const i = RUN_ORDER.indexOf(key); return i < 0 ? RUN_ORDER.length : i; };

interface Sample { rps: number; cpuUsPerRequest: number; envoyCpuUtil: number; requests: number }
interface LatencySample { rps: number; p50: number; p90: number; p99: number; p999: number; cpuUsPerRequest: number }
interface Run { spec: ConfigSpec; traffic: Traffic; key: string }

export async function runEnvoyOverhead(opts: OverheadOptions = DEFAULTS) {
  const log = opts.log ?? ((l: string) => console.log(l));
  const bin = envoyBin();
  if (spawnSync("sh", ["-c", "command -v wrk"]).status !== 0) throw new Error("wrk not found (apt-get install wrk)");
  if (!hasClang()) throw new Error("clang or wasm-ld not found (apt-get install clang lld): the C peers need them");
  const pin = hasTaskset();
  const envoyCpu = pin ? opts.envoyCpu : undefined;
  const loadCpu = pin ? opts.loadCpu : undefined;
  const dir = mkdtempSync(join(tmpdir(), "graylane-bench-overhead-"));
  const rs = benchRuleSet();
  const noop = buildNoopFilter(dir);
  const peers = new Map(PEERS.map((p) => [p.build, buildPeer(dir, p.build)] as const));
  const pluginConfig = generatedPluginConfig();
  const all = specs(noop, pluginConfig, peers);
  const verified = await verifySameHeaders(bin, all, QUICK ? 50 : 200);
  log(`envoy-overhead: C peers send the same headers as Graylane: ${verified.map((v) => `${v.peer} ${v.requests}/${v.requests} (${v.rerouted} re-routed)`).join(", ")}`);
  const calls = await countCallsPerRequest(WASM, pluginConfig, peers, COMPARE_WASM);
  const upstream = await startNginx(dir, loadCpu);
  const envoys = new Map<string, BenchEnvoy>();
  try {
    for (const s of all) {
      envoys.set(s.id, await startBenchEnvoy(bin, `overhead-${s.id}`, envoyConfig(s, upstream.port), { concurrency: 1, cpus: envoyCpu, expectListeners: 1 }));
    }
    const scripts: Record<Traffic, string> = { group: join(dir, "throughput.lua"), nogroup: join(dir, "nogroup.lua") };
    const latencyScript = join(dir, "latency.lua");
    writeFileSync(scripts.group, wrkScript(null, "group"));
    writeFileSync(scripts.nogroup, wrkScript(null, "nogroup"));
    writeFileSync(latencyScript, wrkScript(opts.latency.delayMs));
    const url = (id: string) => `http://${envoys.get(id)!.listeners[0]}/`;

    // Sanity: each configuration answers 200.
    for (const s of all) {
      for (const t of s.traffic) {
        const { headers } = clientRequest(1, t);
        const r = await httpGet(url(s.id) + "api/items/1", headers);
        if (r.status !== 200) throw new Error(`config ${s.id} (${t}): HTTP ${r.status} ${r.body}`);
      }
    }
    log(`envoy-overhead: upstream ${upstream.kind}; Envoy on CPU ${envoyCpu ?? "any"}, wrk${upstream.port ? " and nginx" : ""} on CPU ${loadCpu ?? "any"}`);
    const runs: Run[] = all.flatMap((s) => s.traffic.map((t) => ({ spec: s, traffic: t, key: `${s.id}/${t}` })))
      .sort((x, y) => runRank(x.key) - runRank(y.key));
    const latencyRuns = all.filter((s) => s.latency);
    for (const r of runs) wrk(url(r.spec.id), scripts[r.traffic], opts.connections, opts.warmupSeconds, loadCpu); // warm-up

    const through = new Map<string, Sample[]>(runs.map((r) => [r.key, []]));
    const lat = new Map<string, LatencySample[]>(latencyRuns.map((s) => [s.id, []]));
    const errors: string[] = [];
    const measure = (id: string, script: string, connections: number, seconds: number) => {
      const e = envoys.get(id)!;
      const c0 = cpuSeconds(e.pid);
      const w = wrk(url(id), script, connections, seconds, loadCpu);
      const cpu = cpuSeconds(e.pid) - c0;
      const bad = w.connect + w.read + w.write + w.status + w.timeout;
      if (bad > 0) errors.push(`${id}: ${JSON.stringify(w)}`);
      return { w, cpu };
    };
    for (let r = 0; r < opts.rounds; r++) {
      for (const run of r % 2 === 0 ? runs : [...runs].reverse()) {
        const { w, cpu } = measure(run.spec.id, scripts[run.traffic], opts.connections, opts.seconds);
        const secs = w.durationUs / 1e6;
        through.get(run.key)!.push({ rps: w.requests / secs, cpuUsPerRequest: (cpu / w.requests) * 1e6, envoyCpuUtil: cpu / secs, requests: w.requests });
      }
      for (const s of r % 2 === 0 ? latencyRuns : [...latencyRuns].reverse()) {
        const { w, cpu } = measure(s.id, latencyScript, opts.latency.connections, opts.latency.seconds);
        lat.get(s.id)!.push({ rps: w.requests / (w.durationUs / 1e6), p50: w.p50, p90: w.p90, p99: w.p99, p999: w.p999, cpuUsPerRequest: (cpu / w.requests) * 1e6 });
      }
      log(`  round ${r + 1}/${opts.rounds}: ` + runs.map((x) => `${x.key} ${through.get(x.key)!.at(-1)!.cpuUsPerRequest.toFixed(1)}µs`).join(", "));
    }
    if (errors.length) throw new Error(`wrk saw errors:\n${errors.join("\n")}`);

    // Envoy's own view of the filter: counters the filter defines, and wasm runtime stats.
    const wasmStats = Object.fromEntries([...(await envoyStats(envoys.get("b")!.admin, "wasm|graylane")).entries()].filter(([, v]) => v !== 0));

    const base = (run: Run) => through.get(`a/${run.traffic}`)!;
    const med = (key: string, f: (x: Sample) => number) => median(through.get(key)!.map(f));
    const medL = (id: string, f: (x: LatencySample) => number) => median(lat.get(id)!.map(f));
    // Ratios and deltas are paired per round (the same minute of the machine's life), then the median.
    const paired = (run: Run, f: (x: Sample, a: Sample) => number) => median(through.get(run.key)!.map((x, r) => f(x, base(run)[r])));
    const pairedL = (id: string, f: (x: LatencySample, a: LatencySample) => number) => median(lat.get(id)!.map((x, r) => f(x, lat.get("a")![r])));
    const configs = runs.map((run) => {
      const s = run.spec;
      const latency = s.latency && run.traffic === "group" ? {
        rps: round(medL(s.id, (x) => x.rps), 0),
        p50Us: round(medL(s.id, (x) => x.p50), 1), p99Us: round(medL(s.id, (x) => x.p99), 1), p999Us: round(medL(s.id, (x) => x.p999), 1),
        p50DeltaUs: round(pairedL(s.id, (x, a) => x.p50 - a.p50), 1), p99DeltaUs: round(pairedL(s.id, (x, a) => x.p99 - a.p99), 1),
        p50PerRound: lat.get(s.id)!.map((x) => x.p50),
        p99PerRound: lat.get(s.id)!.map((x) => x.p99),
        cpuUsPerRequest: round(medL(s.id, (x) => x.cpuUsPerRequest), 2),
      } : undefined;
      return {
        id: s.id, traffic: run.traffic, name: s.name,
        throughput: {
          rps: round(med(run.key, (x) => x.rps), 0),
          ratioToA: round(paired(run, (x, a) => x.rps / a.rps), 3),
          rpsPerRound: through.get(run.key)!.map((x) => round(x.rps, 0)),
          envoyCpuUtil: round(med(run.key, (x) => x.envoyCpuUtil), 3),
        },
        cpuPerRequest: {
          us: round(med(run.key, (x) => x.cpuUsPerRequest), 2),
          addedUs: round(paired(run, (x, a) => x.cpuUsPerRequest - a.cpuUsPerRequest), 2),
          ratioToA: round(paired(run, (x, a) => x.cpuUsPerRequest / a.cpuUsPerRequest), 3),
          usPerRound: through.get(run.key)!.map((x) => round(x.cpuUsPerRequest, 1)),
        },
        latency,
      };
    });
    const runOf = (key: string) => runs.find((r) => r.key === key)!;
    const added = (key: string) => through.get(key)!.map((x, r) => x.cpuUsPerRequest - base(runOf(key))[r].cpuUsPerRequest);
    /** Added CPU of `num` over added CPU of `den`, paired per round: median and bootstrap 95% interval. */
    const ratio = (num: string, den: string, target?: number) => {
      const dn = added(den);
      const rs = added(num).map((x, r) => x / dn[r]);
      const b = bootstrapMedian(rs);
      return { of: `${num} ÷ ${den} (added CPU)`, median: round(b.median, 3), ci95: [round(b.lo, 3), round(b.hi, 3)], perRound: rs.map((x) => round(x, 3)),
        ...(target !== undefined ? { target, met: b.hi <= target } : {}) };
    };
    const ratios = {
      outboundVsPeerCalls: ratio("b/group", "p-calls/group", 1.10),
      outboundVsPeerMinimal: ratio("b/group", "p-min/group", 1.35),
      inboundVsPeerCalls: ratio("b-inbound/group", "p-in-calls/group", 1.15),
      inboundVsPeerMinimal: ratio("b-inbound/group", "p-in-min/group"),
      noGroupVsPeer: ratio("b/nogroup", "p-nogroup/nogroup", 1.15),
      peerCallsVsPeerMinimal: ratio("p-calls/group", "p-min/group"),
      // The other build (BENCH_COMPARE_WASM, e.g. the one before a change) against the same peers.
      ...(COMPARE_WASM ? {
        compareOutboundVsPeerCalls: ratio("b-compare/group", "p-calls/group"),
        compareOutboundVsPeerMinimal: ratio("b-compare/group", "p-min/group"),
        compareInboundVsPeerCalls: ratio("b-compare-inbound/group", "p-in-calls/group"),
        compareNoGroupVsPeer: ratio("b-compare/nogroup", "p-nogroup/nogroup"),
      } : {}),
    };
    const by = (key: string) => configs.find((c) => `${c.id}/${c.traffic}` === key)!;
    // The other build against (b), paired per round: positive = the other build costs more.
    const pairedToB = (f: (x: Sample) => number) => median(through.get("b-compare/group")!.map((x, r) => f(x) - f(through.get("b/group")![r])));
    const compared = COMPARE_WASM ? {
      wasm: COMPARE_WASM,
      cpuUsPerRequestOverB: round(pairedToB((x) => x.cpuUsPerRequest), 2),
      rpsRatioToB: round(median(through.get("b-compare/group")!.map((x, r) => x.rps / through.get("b/group")![r].rps)), 3),
    } : undefined;
    if (compared) log(`envoy-overhead: ${compared.wasm} against (b): ${compared.cpuUsPerRequestOverB} µs CPU per request, ${compared.rpsRatioToB} × its req/s (paired medians)`);
    const bToD = median(through.get("b/group")!.map((x, r) => x.rps / through.get("d/group")![r].rps));
    const targets = {
      ...Object.fromEntries(Object.entries(ratios).filter(([, r]) => "target" in r).map(([k, r]) => [k, { value: r.median, ci95: r.ci95, target: r.target, met: r.met! }])),
      beatsLua: {
        value: { rpsRatioBToD: round(bToD, 3), cpuUsB: by("b/group").cpuPerRequest.us, cpuUsD: by("d/group").cpuPerRequest.us },
        met: bToD > 1 && by("b/group").cpuPerRequest.addedUs < by("d/group").cpuPerRequest.addedUs,
      },
    };
    return {
      setup: {
        envoyCpu: envoyCpu ?? "unpinned", loadCpu: loadCpu ?? "unpinned", concurrency: 1, upstream: upstream.kind,
        loadGenerator: `wrk 4.1 -t1 (Lua request(): distinct x-request-id per request, 18 headers; group traffic: 5 hosts, every 10th with the override header; no-group traffic: ${OTHER_HOST}, every 10th with a stray route header)`,
        throughput: { connections: opts.connections, seconds: opts.seconds, rounds: opts.rounds, statistic: "runs interleaved, compared runs adjacent, every other round in reverse order; req/s and CPU: median over rounds; added CPU and ratios to (a) with the same traffic: median of the per-round pairs; peer ratios: median and bootstrap 95% interval (10,000 resamples) of the per-round ratios of added CPU" },
        latency: { method: `wrk --latency, ${opts.latency.connections} connections each waiting a random 1–${2 * opts.latency.delayMs - 1} ms (Lua delay(), mean ${opts.latency.delayMs} ms) between requests: a near-constant rate far below saturation, arrivals not in lockstep`, seconds: opts.latency.seconds },
        ruleSet: { groups: rs.ruleSet.groups.length, conditions: rs.conditions, regexDfas: rs.regexes, bytes: rs.bytes.length, traceMemorySlots: 65536 },
        pluginConfiguration: "mesh/istio.ts wasmPlugins() for shop0-web, without `cluster` (no control plane in the bench)",
        peers: "bench/peers/lane_peer.c, clang --target=wasm32 -O2, the bench RuleSet's shape built in",
      },
      sameHeaders: verified,
      callsPerRequest: calls,
      configs,
      ratios,
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
      const l = c.latency ? `  p50 ${c.latency.p50Us} µs (${sign(c.latency.p50DeltaUs)})  p99 ${c.latency.p99Us} µs (${sign(c.latency.p99DeltaUs)}) at ${c.latency.rps}/s` : "";
      console.log(`  (${c.id}, ${c.traffic}) ${c.name.padEnd(52)} ${String(c.throughput.rps).padStart(7)} req/s ×${c.throughput.ratioToA.toFixed(3)}  CPU ${c.cpuPerRequest.us.toFixed(1)} µs/req (${sign(c.cpuPerRequest.addedUs)})${l}`);
    }
    for (const [k, c] of Object.entries(r.callsPerRequest)) console.log(`  calls ${k}: ${c.host} host calls, ${c.hooks} hooks, ${c.intoModule} allocations per request`);
    for (const [k, x] of Object.entries(r.ratios)) console.log(`  ratio ${k}: ${x.median} [${x.ci95.join(", ")}]${"target" in x ? ` target ≤ ${x.target}: ${x.met ? "met" : "MISSED"}` : ""}`);
    console.log(`  target beatsLua: ${JSON.stringify(r.targets.beatsLua.value)} ${r.targets.beatsLua.met ? "met" : "MISSED"}`);
    console.log(`  wrote ${writeResult("envoy-overhead", r)}`);
  }).catch((e) => { console.error(e); process.exit(1); });
}

