// The applied RuleSet as flat, immutable tables: built once from the protobuf when a RuleSet is
// applied, then read by every request without decoding anything. Building validates every index
// and table size, so the hot path needs no bounds checks of its own.
import { Protobuf } from "as-proto/assembly";
import { RuleSet } from "../generated/graylane/v1/RuleSet";
import { Group } from "../generated/graylane/v1/Group";
import { Dfa } from "../generated/graylane/v1/Dfa";
import { Condition } from "../generated/graylane/v1/Condition";
import { utf8 } from "./bytes";
import { destination } from "./destination";
import { HeaderSet } from "./headerset";
import { NameIndex } from "./nameindex";
import { checkRuleSetWire, wireError } from "./wirecheck";

/** Features this filter implements; a RuleSet requiring any other is refused. */
export const FEATURES: StaticArray<string> = ["lanes/v1", "match/dfa", "match/user-agent", "sticky/cookie", "propagation/baggage", "trace-memory", "trace-generation", "instance-lane"];
export const BUCKETS: u32 = 10000;
/** Limits that let a destination (lane/destination.ts) pack group and service into one i32. */
export const MAX_GROUPS: i32 = 0x7fff;
export const MAX_SERVICES: i32 = 0xffff;

export const KIND_HEADER: u32 = 0;
export const KIND_COOKIE: u32 = 1;
export const KIND_QUERY: u32 = 2;
export const KIND_URI: u32 = 3;
export const KIND_METHOD: u32 = 4;
export const KIND_OS: u32 = 5;
export const KIND_BROWSER: u32 = 6;

export const OP_EXACT: u32 = 0;
export const OP_PREFIX: u32 = 1;
export const OP_REGEX: u32 = 2;
export const OP_PRESENT: u32 = 3;
export const OP_ABSENT: u32 = 4;
export const OP_ANY_OF: u32 = 5;

// CGroup.traceKind: how a trace id is read and made.
export const TRACE_PLAIN: u32 = 0;
export const TRACE_TRACEPARENT: u32 = 1;
export const TRACE_B3: u32 = 2;

export const TRUST_ANY: u32 = 0;
export const TRUST_INTERNAL: u32 = 1;
export const TRUST_SIGNED: u32 = 2;

const NO_STATE: u32 = 0xffff;

/** A byte DFA, full match, start state 0. */
export class CDfa {
  constructor(
    public classes: Uint8Array, // 256
    public classCount: u32,
    public transitions: Uint8Array, // u16 LE
    public accepting: Uint8Array,
  ) {}

  matches(p: usize, l: usize): bool {
    const cls = this.classes.dataStart;
    const tr = this.transitions.dataStart;
    const cc = <usize>this.classCount;
    let state: usize = 0;
    for (let i: usize = 0; i < l; i++) {
      const next = <u32>load<u16>(tr + ((state * cc + <usize>load<u8>(cls + <usize>load<u8>(p + i))) << 1));
      if (next == NO_STATE) return false;
      state = <usize>next;
    }
    return load<u8>(this.accepting.dataStart + state) == 1;
  }
}

export class CCondition {
  kind: u32 = 0;
  op: u32 = 0;
  name: Uint8Array = new Uint8Array(0);
  /** The header name's id in the RuleSet's HeaderSet (KIND_HEADER), else -1. */
  nameId: i32 = -1;
  value: Uint8Array = new Uint8Array(0);
  dfa: CDfa | null = null;
  values: Array<Uint8Array> = [];
  classes: u32 = 0;
}

export class CLane {
  name: Uint8Array = new Uint8Array(0);
  nameString: string = "";
  has: StaticArray<bool> = new StaticArray<bool>(0); // per service index
  fallback: i32 = 0;
  blocks: Array<Array<CCondition>> = [];
  bucketStart: u32 = 0;
  bucketEnd: u32 = 0;
}

export class CService {
  name: Uint8Array = new Uint8Array(0);
  nameString: string = "";
  hosts: Array<Uint8Array> = [];
  paths: Array<Uint8Array> = [];
}

export class CGroup {
  index: i32 = 0;
  name: Uint8Array = new Uint8Array(0);
  nameString: string = "";
  seed: u32 = 0; // trace-memory fingerprint seed, from the group name
  services: Array<CService> = [];
  lanes: Array<CLane> = [];
  laneHeader: Uint8Array = new Uint8Array(0);
  routeHeader: Uint8Array = new Uint8Array(0);
  overrideHeader: Uint8Array = new Uint8Array(0);
  // Ids in the RuleSet's HeaderSet of the headers the decision reads; -1 where the group has none.
  laneHeaderId: i32 = -1;
  routeHeaderId: i32 = -1;
  overrideHeaderId: i32 = -1;
  traceHeaderId: i32 = -1;
  stickyHeaderId: i32 = -1;
  overrideTrust: u32 = 0;
  trustIncoming: bool = false;
  traceHeader: Uint8Array = new Uint8Array(0);
  traceparent: bool = false;
  traceKind: u32 = TRACE_PLAIN;
  /** At the edge, give a request without the trace header a new one (generate_trace_id). */
  generateTrace: bool = false;
  /** isolation "strict" (strict_isolation): decision step 3b, the leaving instance's lane. */
  strict: bool = false;
  /**
   * The lane (index) of this proxy's instance in this group, resolved once per RuleSet and
   * configuration by the request path (plugin/requestpath.ts); -1: none (base, or no lane of this group).
   */
  instanceLane: i32 = -1;
  saltPrefix: Uint8Array = new Uint8Array(0); // stickySalt + ":"
  stickyHeader: Uint8Array = new Uint8Array(0);
  stickyCookie: Uint8Array = new Uint8Array(0);
  generateCookie: bool = false;
  cookieMaxAge: u32 = 0;
  weighted: bool = false; // some lane has a bucket range

  /** Lane index by name, or -1. */
  laneByName(p: usize, l: usize): i32 {
    for (let i = 0; i < this.lanes.length; i++) {
      const n = unchecked(this.lanes[i]).name;
      if (<usize>n.byteLength == l && memory.compare(n.dataStart, p, l) == 0) return i;
    }
    return -1;
  }

  /** The lane that serves `service`: `lane` if it has it, else down its fallback chain to base. */
  route(lane: i32, service: i32): i32 {
    let l = lane;
    for (let hops = 0; hops <= this.lanes.length; hops++) {
      const cl = unchecked(this.lanes[l]);
      if (l == 0 || unchecked(cl.has[service])) return l;
      l = cl.fallback;
    }
    return 0;
  }
}

export class CRuleSet {
  version: string = "";
  groups: Array<CGroup> = [];
  /** Every header name the RuleSet's requests are read for (RequestView.use). */
  readonly headers: HeaderSet = new HeaderSet();
  /** Service name -> destination (lane/destination.ts), the first in group order. */
  readonly serviceIndex: NameIndex = new NameIndex(false);
  /** Service host -> destination, compared ignoring the request's case. */
  readonly hostIndex: NameIndex = new NameIndex(true);
}

export let ruleError: string = "";

function fail(message: string): CRuleSet | null {
  ruleError = message;
  return null;
}

function buildDfa(d: Dfa, at: string): CDfa | null {
  const sc = d.stateCount;
  const cc = d.classCount;
  if (d.byteClasses.length != 256) { ruleError = at + ".byte_classes: want 256 bytes, got " + d.byteClasses.length.toString(); return null; }
  if (sc == 0 || sc >= NO_STATE || cc == 0 || cc > 256) { ruleError = at + ": bad state or class count"; return null; }
  for (let i = 0; i < 256; i++) {
    if (<u32>d.byteClasses[i] >= cc) { ruleError = at + ".byte_classes[" + i.toString() + "] out of range"; return null; }
  }
  if (<u64>d.transitions.length != <u64>sc * <u64>cc * 2) { ruleError = at + ".transitions: wrong size"; return null; }
  if (<u32>d.accepting.length != sc) { ruleError = at + ".accepting: wrong size"; return null; }
  const tr = d.transitions.dataStart;
  for (let i: usize = 0; i < <usize>(sc * cc); i++) {
    const next = <u32>load<u16>(tr + (i << 1));
    if (next != NO_STATE && next >= sc) { ruleError = at + ".transitions: state out of range"; return null; }
  }
  return new CDfa(d.byteClasses, cc, d.transitions, d.accepting);
}

function buildCondition(c: Condition, dfas: Array<CDfa>, headers: HeaderSet, at: string): CCondition | null {
  const cc = new CCondition();
  cc.kind = <u32>c.kind;
  cc.op = <u32>c.op;
  if (cc.kind > KIND_BROWSER) { ruleError = at + ".kind: unknown " + cc.kind.toString(); return null; }
  if (cc.op > OP_ANY_OF) { ruleError = at + ".op: unknown " + cc.op.toString(); return null; }
  const stringKind = cc.kind <= KIND_URI;
  if (stringKind == (cc.op == OP_ANY_OF)) { ruleError = at + ".op: not valid for this kind"; return null; }
  if (cc.kind == KIND_URI && cc.op >= OP_PRESENT) { ruleError = at + ".op: uri has no present/absent"; return null; }
  if (cc.kind <= KIND_QUERY && c.name.length == 0) { ruleError = at + ".name: empty"; return null; }
  cc.name = utf8(c.name);
  if (cc.kind == KIND_HEADER) cc.nameId = headers.id(cc.name);
  cc.value = c.value;
  if (cc.op == OP_REGEX) {
    if (c.dfa >= <u32>dfas.length) { ruleError = at + ".dfa: " + c.dfa.toString() + " out of range"; return null; }
    cc.dfa = dfas[c.dfa];
  }
  for (let i = 0; i < c.values.length; i++) cc.values.push(utf8(c.values[i]));
  cc.classes = c.classes;
  return cc;
}

function serviceIndex(g: CGroup, name: string): i32 {
  for (let i = 0; i < g.services.length; i++) if (g.services[i].nameString == name) return i;
  return -1;
}

function buildGroup(g: Group, gi: i32, dfas: Array<CDfa>, headers: HeaderSet): CGroup | null {
  const at = "groups[" + gi.toString() + "]";
  const cg = new CGroup();
  cg.index = gi;
  cg.name = utf8(g.name);
  cg.nameString = g.name;
  if (g.name.length == 0) { ruleError = at + ".name: empty"; return null; }
  const ns = g.services.length;
  if (ns > MAX_SERVICES) { ruleError = at + ".services: more than " + MAX_SERVICES.toString(); return null; }
  for (let i = 0; i < ns; i++) {
    const s = g.services[i];
    const cs = new CService();
    cs.name = utf8(s.name);
    cs.nameString = s.name;
    for (let h = 0; h < s.hosts.length; h++) cs.hosts.push(utf8(s.hosts[h]));
    for (let p = 0; p < s.paths.length; p++) cs.paths.push(utf8(s.paths[p]));
    cg.services.push(cs);
  }
  const nl = g.lanes.length;
  if (nl == 0) { ruleError = at + ".lanes: no base lane"; return null; }
  for (let i = 0; i < nl; i++) {
    const l = g.lanes[i];
    const lat = at + ".lanes[" + i.toString() + "]";
    const cl = new CLane();
    cl.name = utf8(l.name);
    cl.nameString = l.name;
    if (l.name.length == 0) { ruleError = lat + ".name: empty"; return null; }
    cl.has = new StaticArray<bool>(ns);
    for (let s = 0; s < l.services.length; s++) {
      const si = serviceIndex(cg, l.services[s]);
      if (si < 0) { ruleError = lat + ".services[" + s.toString() + "]: unknown service " + l.services[s]; return null; }
      cl.has[si] = true;
    }
    if (l.fallback >= <u32>nl) { ruleError = lat + ".fallback: " + l.fallback.toString() + " out of range"; return null; }
    cl.fallback = <i32>l.fallback;
    if (l.bucketStart > l.bucketEnd || l.bucketEnd > BUCKETS) { ruleError = lat + ": bad bucket range"; return null; }
    cl.bucketStart = l.bucketStart;
    cl.bucketEnd = l.bucketEnd;
    if (l.bucketEnd > l.bucketStart) cg.weighted = true;
    for (let b = 0; b < l.match.length; b++) {
      const block = l.match[b];
      const cb = new Array<CCondition>();
      for (let c = 0; c < block.conditions.length; c++) {
        const cc = buildCondition(block.conditions[c], dfas, headers, lat + ".match[" + b.toString() + "].conditions[" + c.toString() + "]");
        if (cc == null) return null;
        cb.push(cc);
      }
      cl.blocks.push(cb);
    }
    cg.lanes.push(cl);
  }
  // Every fallback chain must reach the base lane.
  for (let i = 0; i < nl; i++) {
    let l = i;
    let hops = 0;
    while (l != 0 && hops <= nl) { l = cg.lanes[l].fallback; hops++; }
    if (l != 0) { ruleError = at + ".lanes[" + i.toString() + "].fallback: loop"; return null; }
  }
  cg.laneHeader = utf8(g.laneHeader);
  cg.routeHeader = utf8(g.routeHeader);
  if (g.laneHeader.length == 0 || g.routeHeader.length == 0) { ruleError = at + ": lane and route headers are required"; return null; }
  cg.overrideHeader = utf8(g.overrideHeader);
  cg.overrideTrust = <u32>g.overrideTrust;
  cg.trustIncoming = g.trustIncoming;
  cg.traceHeader = utf8(g.traceHeader);
  cg.traceparent = g.traceHeader == "traceparent";
  cg.traceKind = cg.traceparent ? TRACE_TRACEPARENT : g.traceHeader == "x-b3-traceid" ? TRACE_B3 : TRACE_PLAIN;
  cg.generateTrace = g.generateTraceId && g.traceHeader.length > 0;
  cg.strict = g.strictIsolation;
  cg.saltPrefix = utf8(g.stickySalt + ":");
  cg.seed = 0x5bd1e995 ^ <u32>g.name.length;
  for (let i = 0; i < cg.name.length; i++) cg.seed = (cg.seed ^ <u32>cg.name[i]) * 0x01000193;
  const sk = g.stickyKey;
  if (sk != null) {
    cg.stickyHeader = utf8(sk.header);
    cg.stickyCookie = utf8(sk.cookie);
    cg.generateCookie = sk.generate && sk.cookie.length > 0;
    cg.cookieMaxAge = sk.maxAgeSeconds;
  }
  cg.laneHeaderId = headers.id(cg.laneHeader);
  cg.routeHeaderId = headers.id(cg.routeHeader);
  cg.overrideHeaderId = headers.id(cg.overrideHeader);
  cg.traceHeaderId = headers.id(cg.traceHeader);
  cg.stickyHeaderId = headers.id(cg.stickyHeader);
  return cg;
}

/**
 * Builds the tables of a RuleSet, or returns null with `ruleError` naming what is wrong and where.
 * Never traps on any input.
 */
export function buildRuleSet(bytes: Uint8Array): CRuleSet | null {
  ruleError = "";
  if (!checkRuleSetWire(bytes)) return fail("malformed RuleSet: " + wireError);
  const rs = Protobuf.decode<RuleSet>(bytes, RuleSet.decode);
  for (let i = 0; i < rs.requiredFeatures.length; i++) {
    if (!FEATURES.includes(rs.requiredFeatures[i])) return fail("unsupported required feature " + rs.requiredFeatures[i]);
  }
  const dfas = new Array<CDfa>();
  for (let i = 0; i < rs.dfas.length; i++) {
    const d = buildDfa(rs.dfas[i], "dfas[" + i.toString() + "]");
    if (d == null) return null;
    dfas.push(d);
  }
  if (rs.groups.length > MAX_GROUPS) return fail("groups: more than " + MAX_GROUPS.toString());
  const out = new CRuleSet();
  out.version = rs.version;
  for (let i = 0; i < rs.groups.length; i++) {
    const g = buildGroup(rs.groups[i], i, dfas, out.headers);
    if (g == null) return null;
    out.groups.push(g);
    for (let s = 0; s < g.services.length; s++) {
      const cs = g.services[s];
      out.serviceIndex.add(cs.name, destination(i, s));
      for (let h = 0; h < cs.hosts.length; h++) out.hostIndex.add(cs.hosts[h], destination(i, s));
    }
  }
  return out;
}
