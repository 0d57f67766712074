// Property-based fuzzing (issue #9, Reliability): the real filter.wasm in the Node proxy-wasm host,
// over random valid RuleSets (1-3 lane groups compiled by control-plane/src/compile) and adversarial
// requests (random methods, paths, query strings, hosts; the groups' lane, route, override, trace,
// sticky and match headers, baggage, cookies and user agents with lane names, near misses, empty,
// unicode, raw bytes, 8-64 KiB values, repeated and mixed-case names).
//
// A VM is reconfigured (a config update, as Envoy does) for every RuleSet and placement: each
// RuleSet's requests go through three inbound sidecars (random local services), an outbound sidecar
// (reading the trace memory the inbound ones filled) and a gateway; a VM serves 10 RuleSets, then a
// new one starts. Every request must: not trap; at the edge, when it is of a group that generates trace ids and
// carries no trace header, get exactly one well-formed new one (B3: and x-b3-spanid), distinct from
// every other made in the run, counted once in graylane.trace_generated and used neither as a sticky
// key nor for trace memory, while every other request keeps its trace headers byte for byte; when it has a destination, leave exactly one lane
// header naming a lane of the destination's group (base included), the route DESIGN.md derives from
// that lane, the lane as the baggage member, and move exactly one decision counter, whose source
// agrees with the request (override and propagated headers predicted exactly; rule/weight/base only
// for lanes that have them; never a propagated lane at an edge that does not trust it); with no
// destination, move no decision counter but graylane.no_destination, carry no route header and, at
// the edge, no lane header or baggage lane an untrusting group would strip.
//
// Strict isolation (step 3b): placements carry a random node.lane (a lane of some group, a base, a
// lane of no group, or none); a request of a strict group without override or propagated lane, on
// the outbound side of an instance of one of its lanes other than base, must be decided by trace
// memory or by that instance lane (source instance); no other request may be decided by instance.
// Memory: each placement's requests are replayed once trace memory expired (not the ones decided by
// trace memory or by a freshly generated sticky id), and must decide the same; then replayed again,
// and that identical second replay must not grow linear memory at all (a per-request leak would;
// the first replay may, by fragmentation). Linear memory of a VM stays under 8 MiB.
//
// `make test`: 100,000 decisions (200 RuleSets × 100 requests × 5 placements, plus ~170,000
// replays) with a fixed seed; `make fuzz`: FUZZ_RUNS decisions (1,000,000 there); FUZZ_SEED
// overrides the seed, FUZZ_WASM the module. A failure prints the seed to reproduce it with, and the
// failing request, RuleSet and placement.
import fc from "fast-check";
import { expect, it } from "vitest";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { loadFilterModule, ManualClock, SharedData, WasmVm, type HttpStream, type Metric } from "../../control-plane/src/wasmhost/index.js";
import { WASM_PATH } from "../support/filter.js";
import {
  B3_SPAN, bytesOf, destination, type Destination, type FuzzRequest, generatedTraceFormat, groupsArb, laneIndex, requestArb, routeOf, View, vocabulary,
} from "../support/fuzz.js";

const CASES = Number(process.env.FUZZ_RUNS || 100_000);
const SEED = Number(process.env.FUZZ_SEED || 20_261_123);
/** FUZZ_WASM: fuzz another build of the filter (default filter/build/filter.wasm). */
const WASM = process.env.FUZZ_WASM || WASM_PATH;
/** Requests per RuleSet, each run through 5 placements: 500 decisions per RuleSet. */
const PER_RULESET = 100;
const PLACEMENTS = 5;
const RULESETS = Math.ceil(CASES / (PER_RULESET * PLACEMENTS));
const TTL_SECONDS = 60;
/**
 * A VM lives for this many RuleSets (50 reconfigurations, 5,000 requests and their replays), then a
 * new one starts, so reconfiguration bugs surface while linear memory stays comparable: the filter
 * keeps every counter it ever counted (cumulative, never forgotten, by design) and collects the
 * garbage of a reconfiguration only at its next tick or after 4,096 new streams, so one VM over
 * 1,000 random RuleSets grows for those reasons alone.
 */
const VM_LIFETIME = 10;
/** Linear memory of one VM may never exceed this (it starts at 128 KiB; a request carries up to ~10 × 64 KiB). */
const MEMORY_LIMIT = 8 * 1024 * 1024;
const ROUTE_SERVICE = "xds.route_metadata.filter_metadata.graylane.service";
const SOURCES = ["none", "override", "header", "baggage", "trace", "rule", "weight", "base", "instance"] as const;
type Source = (typeof SOURCES)[number];

/** `lane`: the plugin config's node.lane (the instance's lane; strict groups' step 3b on the outbound side only). */
type Placement = ({ kind: "edge" } | { kind: "outbound" } | { kind: "inbound"; service: string }) & { lane?: string };

interface Scenario {
  groups: Array<Record<string, unknown>>;
  /** The same, parsed (defaults filled in) and in RuleSet order (the compiler sorts groups by name). */
  parsed: LaneGroup[];
  /** Three inbound sidecars (the trace memory they fill is read by the outbound one), an outbound sidecar, a gateway. */
  placements: Placement[];
  clockStepMs: number;
  requests: FuzzRequest[];
}

const enc = new TextEncoder();
const byName = (a: LaneGroup, b: LaneGroup) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function parse(groups: unknown[]): LaneGroup[] {
  return groups.map((g) => {
    const r = parseLaneGroup(g);
    if (!r.ok) throw new Error(`generator produced an invalid lane group: ${JSON.stringify(r.errors)}\n${JSON.stringify(g)}`);
    return r.value;
  }).sort(byName);
}

const scenarioArb: fc.Arbitrary<Scenario> = groupsArb.chain((groups) => {
  const parsed = parse(groups);
  const services = parsed.flatMap((g) => g.services.map((s) => s.name));
  const inbound = fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...services) }, { weight: 1, arbitrary: fc.constant("not-a-service") })
    .map((service): Placement => ({ kind: "inbound", service }));
  // The instance's lane: any group's lane or base, a lane of no group, or none.
  const laneNames = [...new Set(parsed.flatMap((g) => [g.baseLane, ...g.lanes.map((l) => l.name)]))];
  const instanceLane = fc.option(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...laneNames) }, { weight: 1, arbitrary: fc.constant("ghost") }), { nil: undefined, freq: 3 });
  return fc.record({
    groups: fc.constant(groups),
    parsed: fc.constant(parsed),
    placements: fc.tuple(inbound, inbound, inbound, instanceLane, instanceLane, instanceLane)
      .map(([a, b, c, outLane, edgeLane, inLane]): Placement[] => [{ ...a, lane: inLane }, b, c, { kind: "outbound", lane: outLane }, { kind: "edge", lane: edgeLane }]),
    clockStepMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * TTL_SECONDS * 1000 })),
    requests: fc.array(requestArb(vocabulary(parsed)), { minLength: PER_RULESET, maxLength: PER_RULESET }),
  });
});

/** The per-(lane, source) decision counters of one group, to tell which one a request moved. */
class SourceCounters {
  private readonly metrics: Array<{ m: Metric; lane: number; source: Source; last: bigint }> = [];
  constructor(vm: WasmVm, g: LaneGroup) {
    [g.baseLane, ...g.lanes.map((l) => l.name)].forEach((lane, i) => {
      for (const source of SOURCES) {
        const m = vm.metric(`graylane.group.${g.name}.lane.${lane}.source.${source}.requests`);
        if (m) this.metrics.push({ m, lane: i, source, last: m.value });
      }
    });
    if (this.metrics.length === 0) throw new Error(`the filter defined no decision counters for group ${g.name}`);
  }
  /** The counters that moved since the last call, each as lane/source/delta. */
  moved(): Array<{ lane: number; source: Source; delta: bigint }> {
    const out: Array<{ lane: number; source: Source; delta: bigint }> = [];
    for (const e of this.metrics) {
      if (e.m.value !== e.last) {
        out.push({ lane: e.lane, source: e.source, delta: e.m.value - e.last });
        e.last = e.m.value;
      }
    }
    return out;
  }
}

interface Outcome { lane: number; route: number; source: Source; group: number }

const show = (v: string | Uint8Array) => {
  const s = typeof v === "string" ? v : `bytes(${Buffer.from(v).toString("hex")})`;
  return s.length > 200 ? `${JSON.stringify(s.slice(0, 120))}…(${s.length} chars)` : JSON.stringify(s);
};
const describeRequest = (r: FuzzRequest) =>
  `headers: [${r.headers.map(([n, v]) => `${show(n)}: ${show(v)}`).join(", ")}]` +
  (r.routeService !== undefined ? `, route metadata service ${JSON.stringify(r.routeService)}` : "") +
  `, response ${r.status === undefined ? "none (reset)" : JSON.stringify(r.status)}`;

class Violation extends Error {}

/** `message` is a function: it runs only on failure (the checks run millions of times). */
function check(cond: unknown, message: () => string): asserts cond {
  if (!cond) throw new Violation(message());
}

/** Each request's input view, built once for its 5 placements × 2 passes. */
const views = new WeakMap<FuzzRequest, View>();
const viewOf = (r: FuzzRequest) => {
  let v = views.get(r);
  if (!v) views.set(r, (v = new View(r.headers)));
  return v;
};

let vm: WasmVm;
let traceGeneratedLast = 0n;
/** Every trace id the edge made in this run: none may repeat. */
const generatedIds = new Set<string>();
let vmRuleSets = 0;
let vms = 0;
const module = loadFilterModule(WASM);
async function newVm(): Promise<WasmVm> {
  vms++;
  vmRuleSets = 0;
  return WasmVm.create(await module, {
    shared: new SharedData(), clock, vmId: "graylane",
    properties: { "xds.listener_direction": 2 },
    foreignFunctions: { clear_route_cache: () => new Uint8Array() },
    logLevel: 3, // warnings and up
  });
}
const clock = new ManualClock(1_700_000_000_000_000_000n);
const stats = { requests: 0, replayed: 0, noDestination: 0, traceGenerated: 0, sources: new Map<string, number>(), memory: [] as number[], placements: new Map<string, number>() };

/** One request through the filter; checks every per-request property; returns the decision (undefined: no destination). */
function runRequest(groups: LaneGroup[], counters: SourceCounters[], placement: Placement, r: FuzzRequest): Outcome | undefined {
  const props: Record<string, string> = {};
  if (r.routeService !== undefined) props[ROUTE_SERVICE] = r.routeService;
  const s: HttpStream = vm.newHttpStream({ properties: props });
  s.callOnRequestHeaders(r.headers);
  const input = viewOf(r);
  const out = new View(s.requestHeaderMap.entries.map((e) => [e.name, e.value] as const), true);
  const dest: Destination | undefined = destination(groups, input, placement, r.routeService);
  const edge = placement.kind === "edge";
  const untrusting = edge ? groups.filter((g) => !g.trustIncoming) : [];
  let outcome: Outcome | undefined;

  // Trace ids made at the edge: only there, only for a request of a group that asks for them and
  // carries no (non-empty) trace header of its own; every other trace header is kept as sent.
  const gen = vm.metric("graylane.trace_generated")!;
  const generated = edge && dest !== undefined && groups[dest.group].generateTraceId && input.header(groups[dest.group].traceHeader) === undefined;
  check(gen.value - traceGeneratedLast === (generated ? 1n : 0n), () => `graylane.trace_generated moved by ${gen.value - traceGeneratedLast}, want ${generated ? 1 : 0}`);
  traceGeneratedLast = gen.value;
  if (generated) {
    stats.traceGenerated++;
    const th = groups[dest.group].traceHeader;
    const made = out.all(th);
    const dec = new TextDecoder();
    check(made.length === 1 && generatedTraceFormat(th).test(dec.decode(made[0])), () => `edge: want one generated ${th}, got ${made.map(show).join(", ")}`);
    check(!generatedIds.has(dec.decode(made[0])), () => `edge: generated ${th} ${dec.decode(made[0])} twice`);
    generatedIds.add(dec.decode(made[0]));
    if (th === "x-b3-traceid") {
      const span = out.all("x-b3-spanid");
      check(span.length === 1 && B3_SPAN.test(dec.decode(span[0])), () => `edge: want one generated x-b3-spanid, got ${span.map(show).join(", ")}`);
    }
  }
  for (const g of dest ? [groups[dest.group]] : groups) {
    if (generated) break;
    const sent = input.all(g.traceHeader);
    const kept = out.all(g.traceHeader);
    check(sent.length === kept.length && sent.every((v, i) => Buffer.compare(bytesOf(v), kept[i]) === 0), () => `trace header ${g.traceHeader} changed from ${sent.map(show).join(", ")} to ${kept.map(show).join(", ")}`);
  }

  if (!dest) {
    for (const c of counters) check(c.moved().length === 0, () => "a request with no destination moved a decision counter");
    if (placement.kind !== "inbound") {
      for (const g of groups) check(out.all(g.routeHeader).length === 0, () => `no destination, yet route header ${g.routeHeader} left on the request`);
    }
    for (const g of untrusting) {
      if (g.laneHeader !== g.overrideHeader) check(out.all(g.laneHeader).length === 0, () => `edge, no destination: lane header ${g.laneHeader} of untrusting group ${g.name} not stripped`);
    }
    if (untrusting.length) check(!(out.baggageLane()?.length), () => "edge, no destination: a baggage lane member survived");
  } else {
    const g = groups[dest.group];
    const service = g.services[dest.service].name;
    const names = [g.baseLane, ...g.lanes.map((l) => l.name)];
    const lanes = out.all(g.laneHeader);
    check(lanes.length === 1, () => `want one ${g.laneHeader} header, got ${lanes.length}`);
    const lane = laneIndex(g, lanes[0]);
    check(lane >= 0, () => `lane header ${show(lanes[0])} names no lane of group ${g.name} (${names.join(", ")})`);
    const route = routeOf(g, lane, service);
    if (placement.kind !== "inbound") {
      const routes = out.all(g.routeHeader);
      check(routes.length === 1 && laneIndex(g, routes[0]) === route, () => `route header ${routes.map(show).join(", ")} for lane ${names[lane]} at service ${service}: want ${names[route]}`);
    }
    const bag = out.all("baggage");
    check(bag.length === 1 && laneIndex(g, out.baggageLane()) === lane, () => `baggage ${bag.map(show).join(", ")} does not carry lane ${names[lane]}`);
    // Other untrusting groups' headers are stripped at the edge too.
    for (const h of untrusting) {
      if (h.laneHeader !== h.overrideHeader && h.laneHeader !== g.laneHeader) check(out.all(h.laneHeader).length === 0, () => `edge: lane header ${h.laneHeader} of untrusting group ${h.name} not stripped`);
      if (h.routeHeader !== g.routeHeader) check(out.all(h.routeHeader).length === 0, () => `edge: route header ${h.routeHeader} of untrusting group ${h.name} not stripped`);
    }

    const moved = counters[dest.group].moved();
    check(moved.length === 1 && moved[0].delta === 1n && moved[0].lane === lane, () => `want exactly one decision counter +1 for lane ${names[lane]}, moved: ${JSON.stringify(moved, (_, v) => (typeof v === "bigint" ? Number(v) : v))}`);
    const source = moved[0].source;
    // The sources DESIGN.md fixes from the request alone: override, then propagated headers.
    const propagatedOk = !edge || g.trustIncoming;
    const override = g.overrideHeader ? laneIndex(g, input.header(g.overrideHeader)) : -1;
    const overrideTrusted = g.overrideTrust === "any" || (g.overrideTrust === "internal" && !edge);
    const header = propagatedOk ? laneIndex(g, input.header(g.laneHeader)) : -1;
    const baggage = propagatedOk ? laneIndex(g, input.baggageLane()) : -1;
    let want: { lane: number; source: Source } | undefined;
    if (override >= 0 && overrideTrusted) want = { lane: override, source: "override" };
    else if (header >= 0) want = { lane: header, source: "header" };
    else if (baggage >= 0) want = { lane: baggage, source: "baggage" };
    if (want) {
      check(source === want.source && lane === want.lane, () => `decided ${names[lane]} by ${source}; want ${names[want.lane]} by ${want.source}`);
    } else {
      check(["trace", "instance", "rule", "weight", "base"].includes(source), () => `decided ${names[lane]} by ${source}, which the request does not carry`);
      // Step 3b: in a strict group, on the outbound side of an instance of a lane (not base) of the
      // group, the instance's lane unless trace memory decided; nowhere else.
      const inst = placement.kind === "outbound" && g.isolation === "strict" && placement.lane !== undefined ? laneIndex(g, enc.encode(placement.lane)) : -1;
      if (inst > 0) check(source === "trace" || (source === "instance" && lane === inst), () => `strict group, instance lane ${names[inst]}: decided ${names[lane]} by ${source}`);
      else check(source !== "instance", () => `decided ${names[lane]} by instance with no instance lane here (${placement.kind}, node.lane ${placement.lane}, ${g.isolation})`);
      if (source === "base") check(lane === 0, () => `source base but lane ${names[lane]}`);
      if (source === "rule") check(lane > 0 && g.lanes[lane - 1].match.length > 0, () => `source rule for lane ${names[lane]}, which has no match`);
      if (source === "weight") check(lane > 0 && g.lanes[lane - 1].weight > 0, () => `source weight for lane ${names[lane]}, which has no weight`);
      // A generated trace id is no sticky key, and no trace memory knows it.
      if (generated) {
        check(source !== "trace", () => "edge: decided by trace memory with a freshly generated trace id");
        const sk = g.stickyKey;
        const keyed = sk !== undefined && (sk.cookie !== undefined || (sk.header !== undefined && input.header(sk.header) !== undefined));
        check(source !== "weight" || keyed, () => `edge: decided ${names[lane]} by weight with no sticky key but the generated trace id`);
      }
    }
    outcome = { lane, route, source, group: dest.group };
  }

  if (r.status !== undefined) s.callOnResponseHeaders([[":status", r.status]]);
  s.complete();
  check(!vm.failed, () => "the VM failed");
  return outcome;
}

async function runScenario(sc: Scenario): Promise<void> {
  if (!vm || vmRuleSets >= VM_LIFETIME) vm = await newVm();
  vmRuleSets++;
  const groups = sc.parsed;
  const ruleSet = Buffer.from(compileRuleSet(groups).bytes).toString("base64");
  clock.advanceMs(sc.clockStepMs);
  for (const placement of sc.placements) runPlacement(sc, groups, ruleSet, placement);
}

/** The scenario's requests through the filter configured as `placement`, then replayed. */
function runPlacement(sc: Scenario, groups: LaneGroup[], ruleSet: string, placement: Placement): void {
  const config: Record<string, unknown> = { ruleSet, traceMemory: { slots: 512, ttlSeconds: TTL_SECONDS } };
  if (placement.kind === "edge") config.edge = true;
  else config.direction = placement.kind;
  if (placement.kind === "inbound") config.service = placement.service;
  if (placement.lane !== undefined) config.node = { lane: placement.lane };
  if (!vm.configure(JSON.stringify(config))) throw new Violation("the filter refused a compiled RuleSet: " + vm.logsAtLeast(3).slice(-3).join("; "));
  const counters = groups.map((g) => new SourceCounters(vm, g));
  const noDest = vm.metric("graylane.no_destination")!;
  const noDestBefore = noDest.value;
  traceGeneratedLast = vm.metric("graylane.trace_generated")!.value; // pass 3 below runs requests unchecked
  stats.placements.set(placement.kind, (stats.placements.get(placement.kind) ?? 0) + 1);

  let index = -1;
  let pass = 1;
  const replayed: FuzzRequest[] = [];
  try {
    const first: Array<Outcome | undefined> = [];
    let expectNoDest = 0n;
    for (index = 0; index < sc.requests.length; index++) {
      const o = runRequest(groups, counters, placement, sc.requests[index]);
      first.push(o);
      stats.requests++;
      if (o) stats.sources.set(o.source, (stats.sources.get(o.source) ?? 0) + 1);
      else { expectNoDest++; stats.noDestination++; }
    }
    index = -1;
    check(noDest.value - noDestBefore === expectNoDest, () => `graylane.no_destination moved by ${noDest.value - noDestBefore}, want ${expectNoDest}`);

    // Replay once trace memory has expired: the same decisions. Not replayed: decisions by trace
    // memory (expired now) and by a freshly generated sticky id.
    pass = 2;
    clock.advanceMs((TTL_SECONDS + 1) * 1000);
    for (index = 0; index < sc.requests.length; index++) {
      const o1 = first[index];
      if (o1 && (o1.source === "trace" || (groups[o1.group].stickyKey?.generate && (o1.source === "weight" || o1.source === "base")))) continue;
      const o2 = runRequest(groups, counters, placement, sc.requests[index]);
      replayed.push(sc.requests[index]);
      check(o1 === o2 || (o1 && o2 && o1.lane === o2.lane && o1.route === o2.route && o1.source === o2.source && o1.group === o2.group), () => `replay decided ${JSON.stringify(o2)}, first time ${JSON.stringify(o1)}`);
    }
    stats.replayed += replayed.length;
    // The same again: the replay left every buffer at its size for these requests and the heap's
    // long-lived blocks where they are, so the identical sequence must fit in the memory it has. (The
    // first replay may still grow it: 8-64 KiB requests need contiguous free blocks, and the
    // allocator's layout after the first pass differs from the one before it.)
    pass = 3;
    const afterReplay = vm.memoryBytes();
    clock.advanceMs((TTL_SECONDS + 1) * 1000);
    for (index = 0; index < replayed.length; index++) {
      const r = replayed[index];
      const s = vm.newHttpStream({ properties: r.routeService === undefined ? {} : { [ROUTE_SERVICE]: r.routeService } });
      s.callOnRequestHeaders(r.headers);
      if (r.status !== undefined) s.callOnResponseHeaders([[":status", r.status]]);
      s.complete();
    }
    stats.replayed += replayed.length;
    index = -1;
    check(!vm.failed, () => "the VM failed");
    check(vm.memoryBytes() === afterReplay, () => `linear memory grew from ${afterReplay} to ${vm.memoryBytes()} bytes running the same ${replayed.length} requests again`);
    check(vm.memoryBytes() <= MEMORY_LIMIT, () => `linear memory ${vm.memoryBytes()} bytes after ${vmRuleSets} RuleSets, over the ${MEMORY_LIMIT} limit`);
    stats.memory.push(vm.memoryBytes());
  } catch (e) {
    const where = index < 0 ? `after pass ${pass}` : `request ${index} of pass ${pass}: ${describeRequest(pass === 3 ? replayed[index] : sc.requests[index])}`;
    const why = e instanceof Violation ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    throw new Error(`${why}\n  at ${where}\n  placement: ${JSON.stringify(placement)}\n  groups: ${JSON.stringify(sc.groups)}`, { cause: e });
  }
}

it(`fuzz: ${(RULESETS * PER_RULESET * PLACEMENTS).toLocaleString("en")} decisions: ${RULESETS} random RuleSets × ${PER_RULESET} random requests × ${PLACEMENTS} placements (seed ${SEED})`, async () => {
  const start = performance.now();
  const details = await fc.check(fc.asyncProperty(scenarioArb, (sc) => runScenario(sc)), { seed: SEED, numRuns: RULESETS, endOnFailure: true });
  const seconds = (performance.now() - start) / 1000;
  const mem = stats.memory;
  const sources = [...stats.sources].sort(([a], [b]) => SOURCES.indexOf(a as Source) - SOURCES.indexOf(b as Source)).map(([k, v]) => `${k} ${v}`).join(", ");
  console.log(`fuzz: seed ${SEED}: ${stats.requests.toLocaleString("en")} requests (+${stats.replayed.toLocaleString("en")} replayed) over ${details.numRuns} RuleSets ` +
    `(${[...stats.placements].map(([k, v]) => `${k} ${v}`).join(", ")}) in ${seconds.toFixed(1)} s, ${Math.round((stats.requests + stats.replayed) / seconds).toLocaleString("en")} requests/s; ` +
    `decisions: ${sources}, no destination ${stats.noDestination}; trace ids made at the edge ${stats.traceGenerated}; ` +
    `linear memory of the ${vms} VMs after each RuleSet: ${mem.reduce((a, b) => Math.min(a, b), Infinity) / 1024}-${mem.reduce((a, b) => Math.max(a, b), 0) / 1024} KiB (limit ${MEMORY_LIMIT / 1024})`);
  if (details.failed) {
    const err = details.errorInstance as Error | undefined;
    throw new Error(`fuzz failed (reproduce: FUZZ_SEED=${details.seed} FUZZ_RUNS=${CASES} make fuzz; fast-check path ${JSON.stringify(details.counterexamplePath)}) after ${details.numRuns} RuleSets:\n${err?.message ?? "(no error)"}`);
  }
  expect(details.numRuns).toBe(RULESETS);
  expect(vm.failed).toBe(false);
}, 3_600_000);
