// bench/results/*.json → bench/results/summary.md: the tables the README's Performance section quotes.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { round, sign, type Machine } from "./common.js";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

function load(dir: string, name: string): Json | undefined {
  const p = join(dir, `${name}.json`);
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : undefined;
}

const yes = (met: boolean) => (met ? "**met**" : "**missed**");
const kib = (b: number) => `${(b / 1024).toLocaleString("en-US", { maximumFractionDigits: 0 })} KiB`;

export function summaryMarkdown(dir: string): string {
  const overhead = load(dir, "envoy-overhead");
  const push = load(dir, "push-latency");
  const counters = load(dir, "counter-exactness");
  const memory = load(dir, "filter-memory");
  const decision = load(dir, "filter-decision");
  const kube = load(dir, "kube-push");
  const replicaPush = load(dir, "replica-push");
  const relay = load(dir, "relay-soak");
  const any = overhead ?? push ?? counters ?? memory ?? decision ?? kube ?? replicaPush ?? relay;
  if (!any) return "# Graylane benchmarks\n\nNo results yet: run `make bench`.\n";
  const m: Machine = any.machine;
  const out: string[] = [];
  out.push("# Graylane benchmarks", "");
  out.push(`Machine: ${m.nproc} CPUs (\`nproc\`), ${m.cpuModel} (/proc/cpuinfo), ${m.kernel}; Envoy ${m.envoy}; Node ${m.node}.`);
  const dates = [overhead, push, counters, memory, decision, kube, replicaPush, relay].filter(Boolean).map((r: Json) => String(r.machine.date).slice(0, 16).replace("T", " ")).sort();
  out.push(`Results written ${dates[0] === dates.at(-1) ? dates[0] : `${dates[0]} to ${dates.at(-1)}`} UTC${any.quick ? " — **quick mode (BENCH_QUICK=1): smoke sizes, not for quoting**" : ""}. `
    + "Every figure is set against a baseline measured in the same run; `make bench` regenerates this file.");
  const loads = ([["envoy-overhead", overhead], ["push-latency", push], ["counter-exactness", counters], ["filter-memory", memory], ["filter-decision", decision], ["kube-push", kube], ["replica-push", replicaPush], ["relay-soak", relay]] as Array<[string, Json]>)
    .filter(([, r]) => r?.machine?.loadAverage).map(([n, r]) => `${n} ${r.machine.loadAverage.atStart} → ${r.machine.loadAverage.atEnd}`);
  if (loads.length) out.push(`1-minute load average at start → end of each benchmark (the machine is shared; other work skews the figures): ${loads.join(", ")}.`);
  out.push("");

  if (overhead) {
    const s = overhead.setup;
    out.push("## Envoy overhead (`bench/envoy-overhead.ts`)", "");
    out.push(`wrk → Envoy (--concurrency ${s.concurrency}, CPU ${s.envoyCpu}) → ${s.upstream} (wrk and upstream on CPU ${s.loadCpu}). `
      + `RuleSet: ${s.ruleSet.groups} groups, ${s.ruleSet.conditions} conditions, ${s.ruleSet.regexDfas} regex DFAs, trace memory ${s.ruleSet.traceMemorySlots} slots; `
      + `plugin configuration: ${s.pluginConfiguration ?? "bench"}; C peers: ${s.peers ?? "none"}. `
      + `Throughput: ${s.throughput.connections} connections × ${s.throughput.seconds} s × ${s.throughput.rounds} rounds, ${s.throughput.statistic}. `
      + `Latency: ${s.latency.method}, ${s.latency.seconds} s per configuration and round (median of the rounds' percentiles).`, "");
    out.push("| configuration | traffic | req/s | ratio to (a) | Envoy CPU µs/request | added CPU µs | latency rate req/s | p50 µs | Δp50 µs | p99 µs | Δp99 µs |");
    out.push("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (const c of overhead.configs) {
      const l = c.latency;
      out.push(`| (${c.id}) ${c.name} | ${c.traffic ?? "group"} | ${c.throughput.rps} | ${c.throughput.ratioToA.toFixed(3)} | ${c.cpuPerRequest.us} | ${sign(c.cpuPerRequest.addedUs)} | `
        + (l ? `${l.rps} | ${l.p50Us} | ${sign(l.p50DeltaUs)} | ${l.p99Us} | ${sign(l.p99DeltaUs)} |` : "| | | | |"));
    }
    if (overhead.ratios) {
      out.push("", "Ratios of added CPU per request, paired per round (median, bootstrap 95% interval; a target is met when the interval's upper end is at or under it):", "");
      out.push("| ratio | of | median | 95% interval | target |", "|---|---|--:|--:|---|");
      for (const [k, r] of Object.entries(overhead.ratios as Record<string, Json>)) {
        out.push(`| ${k} | ${r.of} | ${r.median} | [${r.ci95.join(", ")}] | ${r.target !== undefined ? `≤ ${r.target}: ${yes(r.met)}` : "—"} |`);
      }
    }
    if (overhead.callsPerRequest) {
      out.push("", "Calls per request on the same traffic, counted by the Node host (what the module asks of any host):", "");
      out.push("| module, path | host calls | hooks | calls back into the module |", "|---|--:|--:|--:|");
      for (const [k, c] of Object.entries(overhead.callsPerRequest as Record<string, Json>)) out.push(`| ${k} | ${c.host} | ${c.hooks} | ${c.intoModule} |`);
    }
    if (overhead.sameHeaders) {
      out.push("", "Same headers: " + overhead.sameHeaders.map((v: Json) => `${v.peer} = ${v.against} on ${v.requests} ${v.traffic} requests (${v.rerouted} re-routed)`).join("; ")
        + " — the lane, route and baggage headers an echo upstream saw, and the route Envoy picked.");
    }
    const t = overhead.targets;
    if (t.beatsLua) out.push("", `Against Lua (d): ${t.beatsLua.value.rpsRatioBToD}× its throughput, ${t.beatsLua.value.cpuUsB} vs ${t.beatsLua.value.cpuUsD} CPU µs/request — ${yes(t.beatsLua.met)}.`);
    if (overhead.compared) {
      out.push("", `Another build (b-compare, ${overhead.compared.wasm}) against (b), paired per round: ${sign(overhead.compared.cpuUsPerRequestOverB)} µs CPU per request, ${overhead.compared.rpsRatioToB} × its req/s.`);
    }
    out.push("");
  }

  if (push) {
    out.push("## Rule push latency (`bench/push-latency.ts`)", "");
    out.push(`${push.setup.controlPlane}; ${push.setup.envoy}; ${push.setup.fleet}. Floor: ${push.setup.floor}. Measured: ${push.setup.measure}. Each size: ${push.sizes[0]?.changes} changes.`, "");
    out.push("| subscribers (fleet + Envoy) | commit → all ACKed p50 / p99 ms | last push written ms | control plane CPU ms/change | µs per subscriber | floor µs per subscriber | ÷ floor | ÷ first row | KB per subscriber (floor) | floor push → all ACKed p50 / p99 ms | fleet CPU ms/change |");
    out.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (const r of push.sizes) {
      out.push(`| ${r.fleetSubscribers} + ${r.envoySubscribers} | ${r.commitToAllAckedMs.p50} / ${r.commitToAllAckedMs.p99} | ${r.commitToLastPushWrittenMs} | ${r.controlPlane.cpuMsPerChange} | ${r.controlPlane.cpuUsPerSubscriber} | ${r.floor?.cpuUsPerSubscriber ?? "—"} | ${r.cpuToFloor ?? "—"} | ${r.cpuPerSubscriberToFirstSize} | ${r.controlPlane.kbPerSubscriber} (${r.floor?.kbPerSubscriber ?? "—"}) | ${r.floor ? `${r.floor.pushToAllAckedMs.p50} / ${r.floor.pushToAllAckedMs.p99}` : "—"} | ${r.fleetCpuMsPerChange} |`);
    }
    out.push("", `Targets: ${Object.entries(push.targets).map(([k, t]) => `${k} ${yes((t as { met: boolean }).met)}`).join(", ")}. A change with no fleet: ${push.setup.fixedCpuMsPerChange} ms CPU; idle control plane rss ${push.setup.idleControlPlaneRssMB} MB. `
      + "All processes share this machine's cores: the fleet's CPU is what real proxies spend on their own hosts.");
    const rep = push.reports;
    if (rep) {
      out.push("", `Traffic reports: ${rep.subscribers} filters every ${rep.everyMs} ms for ${rep.seconds} s: ${rep.reportsPerSecond} reports/s answered (${rep.failed} failed), latency p50 ${rep.reportLatencyMs.p50} ms p99 ${rep.reportLatencyMs.p99} ms; control plane ${rep.controlPlaneCpuPerSecondMs} ms CPU/s (${rep.controlPlaneCpuUsPerReport} µs per report), event loop delay p99 ${rep.eventLoopDelayMs.p99} ms; reports in flight at each interval's end ${rep.inFlightByWindow.join(", ")}; `
        + `a change pushed meanwhile p50 ${rep.pushWhileReportingMs.p50} ms p99 ${rep.pushWhileReportingMs.p99} ms; GET /v1/traffic p50 ${rep.trafficGetMs.p50} ms p99 ${rep.trafficGetMs.p99} ms; totals ${rep.exact ? "exact" : "NOT exact"}.`);
    }
    out.push("");
  }

  if (replicaPush) {
    out.push("## One replica against three (`bench/replica-push.ts`)", "");
    out.push(`${replicaPush.setup.replicas}; ${replicaPush.setup.fleet}. Measured: ${replicaPush.setup.measure}.`, "");
    out.push("| mode | subscribers per replica | PUT → all received p50 / p99 ms | CPU ms per change per replica |", "|---|---|--:|---|");
    for (const m of [replicaPush.one, replicaPush.three]) out.push(`| ${m.mode} | ${m.perReplica.join(" / ")} | ${m.putToAllReceivedMs.p50} / ${m.putToAllReceivedMs.p99} | ${m.replicaCpuMsPerChange.join(" / ")} |`);
    out.push("", `Three ÷ one, p99: ${replicaPush.p99ThreeToOne}.`, "");
  }

  if (relay) {
    out.push("## etcd traffic relay soak (`bench/relay-soak.ts`)", "");
    out.push(`${relay.setup.filters} filters every ${relay.setup.everyMs} ms for ${relay.seconds} s (${relay.reportsPerSecond} reports/s, ${relay.refused} refused), ${relay.setup.churn}; lease generation ${relay.setup.keyTtlMs / 1000} s, compaction every ${relay.setup.compactEveryMs / 1000} s. `
      + `etcd at most ${relay.maxDbMB} MB of its ${relay.quotaMB} MB quota (${round(relay.maxDbShareOfQuota * 100, 1)}%); ${relay.keysAtEnd} keys at the end; ${relay.relay.transactions} transactions, ${relay.relay.published} puts, ${relay.relay.compactions} compactions; relay and ingest ${relay.cpuMsPerSecond} ms CPU/s; totals ${relay.exact ? "exact" : "NOT exact"}.`, "");
    out.push("| s | etcd MB | in use MB | keys |", "|--:|--:|--:|--:|");
    for (const x of relay.samples) out.push(`| ${x.s} | ${x.dbMB} | ${x.inUseMB} | ${x.keys} |`);
    out.push("");
  }

  if (counters) {
    out.push("## Counter exactness (`bench/counter-exactness.ts`)", "");
    out.push(`${counters.requests.toLocaleString("en-US")} requests through ${counters.setup.envoy}: ${counters.setup.phases.join(" → ")}.`, "");
    out.push("| count | requests | errors (503) |", "|---|--:|--:|");
    out.push(`| client (answers received) | ${counters.client.ok + counters.client.errors + counters.client.other} | ${counters.client.errors} |`);
    out.push(`| Envoy \`http.inbound-shop0-web.downstream_rq_total\` / \`_5xx\` | ${counters.envoy.downstreamRqTotal} | ${counters.envoy.downstreamRq5xx} |`);
    out.push(`| Envoy \`cluster.local-app.upstream_rq_total\` | ${counters.envoy.upstreamRqTotal} | |`);
    out.push(`| control plane \`/v1/traffic\` | ${counters.traffic.requests} | ${counters.traffic.errors} |`);
    out.push("", `Per lane (/v1/traffic vs the filter's own Envoy counters): ${counters.perLane.map((l: Json) => `${l.lane} ${l.traffic}/${l.filterEnvoyStats}`).join(", ")}. `
      + `Exact: **${counters.exact ? "yes" : "no"}** (difference ${counters.difference}).`, "");
  }

  if (memory) {
    const l = memory.linearMemory;
    out.push("## Filter memory (`bench/filter-memory.ts`)", "");
    out.push(`${memory.setup.host}. ${memory.setup.requests.toLocaleString("en-US")} requests with distinct trace ids.`, "");
    out.push("| after requests | linear memory | trace memory keys |", "|--:|--:|--:|");
    out.push(`| 0 (at rest, RuleSet applied) | ${kib(l.atRestBytes)} | 0 |`);
    for (const c of l.checkpoints) out.push(`| ${c.requests.toLocaleString("en-US")} | ${kib(c.linearMemoryBytes)} | ${c.traceMemoryKeys.toLocaleString("en-US")} |`);
    out.push("", `Linear memory after/at rest: ×${l.ratioAfterToRest}. Trace memory: ${memory.traceMemory.keys.toLocaleString("en-US")} of ${memory.traceMemory.slots.toLocaleString("en-US")} slots used, ${kib(memory.traceMemory.sharedDataBytes)} of Envoy shared data (per proxy, not per VM).`, "");
  }

  if (decision) {
    out.push("## Filter decision in the Node host (`bench/filter-decision.ts`)", "");
    out.push(`${decision.setup.host}, ${decision.setup.requests.toLocaleString("en-US")} requests × ${decision.setup.rounds} rounds, ${decision.setup.statistic}: `
      + `no-op module ${decision.noopUsPerRequest} µs/request, Graylane ${decision.graylaneUsPerRequest} µs/request (×${decision.ratio}, +${decision.filterCostUs} µs, most of it the JS host's header maps). `
      + `filter.wasm ${decision.filterWasmBytes.toLocaleString("en-US")} bytes.`, "");
  }
  if (kube) {
    const s = kube.setup;
    const row = (what: string, x: Json) => `| ${what} | ${x.n} | ${x.p50} | ${x.p99} | ${x.max} |`;
    out.push("## Kubernetes: API-server commit → every subscriber ACKed (`bench/kube-push.ts`)", "");
    out.push(`${s.apiServer}; ${s.controlPlane}; ${s.subscribers}. Measured ${s.measure}.`, "");
    out.push("| change | n | p50 ms | p99 ms | max ms |", "|---|--:|--:|--:|--:|");
    out.push(row("kubectl replace of a LaneGroup (weight)", kube.kubectlApplyToAllAckedMs));
    out.push(row("a canary Deployment becomes available (autoLanes)", kube.canaryAvailableToAllAckedMs));
    out.push(row("the canary Deployment is deleted", kube.canaryDeletedToAllAckedMs));
    out.push(row("floor: REST PUT into a SQLite control plane", kube.floorRestPutSqliteToAllAckedMs));
    out.push("");
  }
  return out.join("\n");
}

export function writeSummary(dir: string): string {
  const path = join(dir, "summary.md");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, summaryMarkdown(dir));
  return path;
}
