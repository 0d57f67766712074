// The lane decision of DESIGN.md, first step that yields a lane wins:
// override -> propagated (lane header, baggage) -> trace memory -> instance (strict groups only)
// -> rules -> sticky weight -> base.
import { RequestView } from "./request";
import { Scratch } from "./bytes";
import { murmur3 } from "./murmur3";
import { laneMatches } from "./match";
import { BUCKETS, CGroup, TRUST_ANY, TRUST_INTERNAL, TRUST_SIGNED } from "./rules";
import { SignedOverrides } from "./signed";
import { TraceMemory } from "./tracememory";
import { writeHex16 } from "./tracegen";

// Values of rules.proto/traffic.proto DecisionSource.
export const SRC_NONE: u32 = 0;
export const SRC_OVERRIDE: u32 = 1;
export const SRC_HEADER: u32 = 2;
export const SRC_BAGGAGE: u32 = 3;
export const SRC_TRACE: u32 = 4;
export const SRC_RULE: u32 = 5;
export const SRC_WEIGHT: u32 = 6;
export const SRC_BASE: u32 = 7;
export const SRC_INSTANCE: u32 = 8;
/** Sources per lane (metric ids are [lane * SOURCES + source]). */
export const SOURCES: i32 = 9;
export const SOURCE_NAMES: StaticArray<string> = ["none", "override", "header", "baggage", "trace", "rule", "weight", "base", "instance"];

export class Decider {
  // Results of the last decide().
  lane: i32 = 0;
  source: u32 = SRC_BASE;
  overrideIgnored: bool = false; // an override named no lane of the group, or was not trusted
  unknownLane: bool = false; // a propagated lane header / baggage member named no lane
  hasTrace: bool = false;
  tracePtr: usize = 0;
  traceLen: usize = 0;
  bucket: i32 = -1;
  /** Set when a sticky id was generated: the response must carry it as a cookie. */
  generated: bool = false;
  readonly generatedId: usize = heap.alloc(16); // 16 hex chars

  private key: Scratch = new Scratch();
  /** Keys for `overrideTrust: signed` (loaded from the rule stream). */
  readonly signed: SignedOverrides = new SignedOverrides();

  constructor(public traces: TraceMemory) {}

  /** Reads the group's trace id (for traceparent, its trace-id field) into tracePtr/traceLen. */
  findTrace(g: CGroup, req: RequestView): bool {
    this.hasTrace = false;
    if (!req.header(g.traceHeaderId)) return false;
    let p = req.valPtr;
    let l = req.valLen;
    if (g.traceparent) {
      // version "-" trace-id(32 hex) "-" parent-id(16) "-" flags(2)
      if (l < 55 || load<u8>(p + 2) != 45 || load<u8>(p + 35) != 45) return false;
      p += 3;
      l = 32;
    }
    this.tracePtr = p;
    this.traceLen = l;
    this.hasTrace = true;
    return true;
  }

  /**
   * Decides the lane of `req` in group `g`. `edge`: this filter is a gateway; there the propagated
   * headers were removed unless the group trusts them, and `internal` overrides do not count.
   * `entropy` seeds a generated sticky id. `instanceLane`: the lane (index in g) of the instance the
   * request leaves, for step 3b of a strict group; -1 for none (inbound, edge, base, not a lane of g).
   */
  decide(g: CGroup, req: RequestView, edge: bool, nowMillis: u64, entropy: u64, instanceLane: i32 = -1): void {
    this.overrideIgnored = false;
    this.unknownLane = false;
    this.generated = false;
    this.bucket = -1;
    this.findTrace(g, req);

    // 1. override
    if (req.header(g.overrideHeaderId)) {
      let l = -1;
      if (g.overrideTrust == TRUST_SIGNED) {
        if (this.signed.verify(req.valPtr, req.valLen, nowMillis / 1000)) l = g.laneByName(this.signed.lanePtr, this.signed.laneLen);
      } else if (g.overrideTrust == TRUST_ANY || (g.overrideTrust == TRUST_INTERNAL && !edge)) {
        l = g.laneByName(req.valPtr, req.valLen);
      }
      if (l >= 0) { this.set(l, SRC_OVERRIDE); return; }
      this.overrideIgnored = true;
    }

    // 2. propagated
    if (!edge || g.trustIncoming) {
      if (req.header(g.laneHeaderId)) {
        const l = g.laneByName(req.valPtr, req.valLen);
        if (l >= 0) { this.set(l, SRC_HEADER); return; }
        this.unknownLane = true;
      }
      if (req.baggageLane()) {
        const l = g.laneByName(req.valPtr, req.valLen);
        if (l >= 0) { this.set(l, SRC_BAGGAGE); return; }
        this.unknownLane = true;
      }
    }

    // 3. trace memory
    if (this.hasTrace) {
      const l = this.traces.lookup(g, this.tracePtr, this.traceLen, nowMillis);
      if (l >= 0) { this.set(l, SRC_TRACE); return; }
    }

    // 3b. instance (strict groups): the lane of the instance the request leaves, when not base
    if (g.strict && instanceLane > 0) { this.set(instanceLane, SRC_INSTANCE); return; }

    // 4. rules, in lane order
    const lanes = g.lanes;
    for (let i = 1; i < lanes.length; i++) {
      if (laneMatches(unchecked(lanes[i]), req)) { this.set(i, SRC_RULE); return; }
    }

    // 5. sticky weight
    if (g.weighted && this.stickyKey(g, req, entropy)) {
      const b = <i32>(murmur3(this.key.ptr, this.key.len, 0) % BUCKETS);
      this.bucket = b;
      for (let i = 1; i < lanes.length; i++) {
        const l = unchecked(lanes[i]);
        if (<u32>b >= l.bucketStart && <u32>b < l.bucketEnd) { this.set(i, SRC_WEIGHT); return; }
      }
    }

    // 6. base
    this.set(0, SRC_BASE);
  }

  @inline private set(lane: i32, source: u32): void {
    this.lane = lane;
    this.source = source;
  }

  /** Builds salt ":" key in the key buffer; false when the request has no key at all. */
  private stickyKey(g: CGroup, req: RequestView, entropy: u64): bool {
    const k = this.key;
    k.reset();
    k.pushBytes(g.saltPrefix);
    if (req.header(g.stickyHeaderId)) {
      k.push(req.valPtr, req.valLen);
      return true;
    }
    if (g.stickyCookie.byteLength > 0 && req.cookie(g.stickyCookie) && req.valLen > 0) {
      k.push(req.valPtr, req.valLen);
      return true;
    }
    if (g.generateCookie) {
      writeHex16(this.generatedId, entropy);
      this.generated = true;
      k.push(this.generatedId, 16);
      return true;
    }
    if (this.hasTrace) {
      k.push(this.tracePtr, this.traceLen);
      return true;
    }
    return false;
  }
}

