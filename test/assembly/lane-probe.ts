// Test-only entry: exports pure functions of filter/assembly/lane (and the abi/ pairs decoder) so unit
// tests can call them directly (built by make into filter/build/test/, driven through
// test/support/lane-probe.ts; never shipped). Results that are bytes go to one output buffer read
// with outPtr()/outLen(); lists of names are written one per line.
import { murmur3 } from "../../filter/assembly/lane/murmur3";
import { classifyUserAgent } from "../../filter/assembly/lane/useragent";
import { PairsIndex } from "../../filter/assembly/abi/pairs";
import { Scratch } from "../../filter/assembly/lane/bytes";
import { buildRuleSet, CRuleSet, ruleError } from "../../filter/assembly/lane/rules";
import { RequestView } from "../../filter/assembly/lane/request";
import {
  findDestination, findHost, findPath, findService, RouteMetadata,
} from "../../filter/assembly/lane/destination";
import { edgeStripPlan, StripPlan, unroutedStripPlan } from "../../filter/assembly/lane/edge";
import { baggageWithoutLane, outgoingBaggage } from "../../filter/assembly/lane/propagation";
import { formatStickyCookie } from "../../filter/assembly/lane/cookie";
import { counterKey, keySource } from "../../filter/assembly/lane/counters";
import {
  schemaFieldCount, schemaFieldKind, schemaMessageCount, WIRE_BYTES, WIRE_FIRST_MESSAGE, WIRE_VARINT,
} from "../../filter/assembly/lane/wirecheck";

export function alloc(n: usize): usize { return heap.alloc(n); }
export function hash(ptr: usize, len: usize, seed: u32): u32 { return murmur3(ptr, len, seed); }
export function userAgent(ptr: usize, len: usize): u32 { return classifyUserAgent(ptr, len); }

const out = new Scratch();
export function outPtr(): usize { return out.ptr; }
export function outLen(): usize { return out.len; }

function outString(s: string): void {
  out.reset();
  const b = String.UTF8.encode(s);
  out.push(changetype<usize>(b), <usize>b.byteLength);
}

// ---- abi/pairs.ts

const pairs = new PairsIndex();
/** Entry count, or -1 when the map is malformed. */
export function pairsLoad(p: usize, l: usize): i32 { return pairs.load(p, l) ? pairs.count : -1; }
export function pairsCount(): i32 { return pairs.count; }
/** Entry i as "name\0value" in the output buffer. */
export function pairsEntry(i: i32): void {
  out.reset();
  out.push(pairs.nameAt(i), pairs.nameLenAt(i));
  out.pushByte(0);
  out.push(pairs.valueAt(i), pairs.valueLenAt(i));
}

// ---- lane/rules.ts tables

let rules: CRuleSet | null = null;
/** Builds the tables of RuleSet bytes; false (ruleError in the output buffer) when refused. */
export function rulesLoad(p: usize, l: usize): bool {
  const bytes = new Uint8Array(<i32>l);
  memory.copy(bytes.dataStart, p, l);
  rules = buildRuleSet(bytes);
  if (rules == null) outString(ruleError);
  else view.use(rules!.headers);
  return rules != null;
}
/** Group g's trace-memory fingerprint seed (lane/rules.ts CGroup.seed). */
export function groupSeed(g: i32): u32 { return rules!.groups[g].seed; }
/** Group g's route for lane `lane` and service `service` (lane/rules.ts CGroup.route). */
export function route(g: i32, lane: i32, service: i32): i32 { return rules!.groups[g].route(lane, service); }

// ---- lane/destination.ts

export function destService(p: usize, l: usize): i32 { return findService(rules!, p, l); }
export function destHost(p: usize, l: usize): i32 { return findHost(rules!, p, l); }
export function destPath(p: usize, l: usize): i32 { return findPath(rules!, p, l); }

const view = new RequestView();
const meta = new RouteMetadata();
/** Loads request headers (pairs) into the request view; false when malformed. */
export function requestLoad(p: usize, l: usize): bool { return view.load(p, l); }
/** The request view's host (without port) in the output buffer. */
export function requestHost(): void { out.reset(); out.push(view.hostPtr, view.hostLen); }
/** Loads route metadata (pairs); false when malformed. */
export function metaLoad(p: usize, l: usize): bool { return meta.load(p, l); }
/** "service\nlane" of the loaded metadata. */
export function metaFields(): void {
  out.reset();
  out.push(meta.servicePtr, meta.serviceLen);
  out.pushByte(10);
  out.push(meta.lanePtr, meta.laneLen);
}
export function metaServesLane(p: usize, l: usize): bool {
  const b = new Uint8Array(<i32>l);
  memory.copy(b.dataStart, p, l);
  return meta.servesLane(b);
}
/** The outbound / edge destination of the loaded request and metadata. */
export function destFind(edge: bool): i32 { return findDestination(rules!, meta, view, edge); }

// ---- lane/edge.ts

function outPlan(plan: StripPlan): bool {
  out.reset();
  for (let i = 0; i < plan.headers.length; i++) {
    if (i > 0) out.pushByte(10);
    out.pushBytes(plan.headers[i]);
  }
  return plan.baggage;
}
/** The edge strip plan of the loaded rules (`none`: before any RuleSet); returns its baggage flag. */
export function edgePlan(none: bool): bool { return outPlan(edgeStripPlan(none ? null : rules)); }
/** The no-destination plan; `edge`: less what the edge plan already removes. */
export function unroutedPlan(edge: bool): bool {
  const r = rules!;
  return outPlan(unroutedStripPlan(r, edge ? edgeStripPlan(r) : null));
}

// ---- lane/propagation.ts, on the loaded request

/** The request's baggage without the graylane member (output), or false when it has no such member. */
export function baggageStrip(): bool { return baggageWithoutLane(out, view); }
export function baggageOut(p: usize, l: usize): void {
  const lane = new Uint8Array(<i32>l);
  memory.copy(lane.dataStart, p, l);
  outgoingBaggage(out, view, lane);
}

// ---- lane/cookie.ts

/** Group g's Set-Cookie value for the 16-byte id at idPtr. */
export function cookie(g: i32, idPtr: usize): void { formatStickyCookie(out, rules!.groups[g], idPtr); }

// ---- lane/wirecheck.ts table

export function wireVarint(): u8 { return WIRE_VARINT; }
export function wireBytes(): u8 { return WIRE_BYTES; }
export function wireFirstMessage(): u8 { return WIRE_FIRST_MESSAGE; }
export function wireMessages(): i32 { return schemaMessageCount(); }
export function wireFields(message: i32): i32 { return schemaFieldCount(message); }
export function wireKind(message: i32, field: i32): u8 { return schemaFieldKind(message, field); }

// Traffic counter keys (lane/counters.ts).
export function counterKeyOf(group: u32, lane: u32, route: u32, service: u32, direction: u32, source: u32, status: u32): u64 {
  return counterKey(group, lane, route, service, direction, source, status);
}
export function counterKeySource(key: u64): u64 { return keySource(key); }
