// Trace ids made at the edge (DESIGN.md "The edge"): when a request of a group that asks for it
// (generate_trace_id) carries no trace header, the edge writes a new one, so later hops can restore
// the lane from trace memory. The ids come from the VM's Entropy (lane/entropy.ts); the header value
// is written into one buffer made once, so a request allocates nothing. Pure: no host calls.
import { Entropy } from "./entropy";
import { CGroup, TRACE_B3, TRACE_TRACEPARENT } from "./rules";

// "00-" trace-id(32) "-" parent-id(16) "-" flags(2): the W3C traceparent, version 00, not sampled.
const TRACEPARENT_LEN: usize = 55;

export class TraceIdMaker {
  readonly buf: usize = heap.alloc(TRACEPARENT_LEN);
  /**
   * The trace header's value after make(): [ptr, ptr + len). A plain or B3 id sits where
   * traceparent's trace-id field does, so the fixed bytes around it are never overwritten.
   */
  ptr: usize = 0;
  len: usize = 0;
  /** For B3 (x-b3-traceid), the x-b3-spanid value: span[0, 16). */
  readonly span: usize = heap.alloc(16);
  hasSpan: bool = false;

  constructor() {
    // The fixed bytes of traceparent, written once: only the ids change per request.
    const p = this.buf;
    store<u8>(p, 48); store<u8>(p, 48, 1); store<u8>(p, 45, 2); // "00-"
    store<u8>(p, 45, 35); // "-"
    store<u8>(p, 45, 52); store<u8>(p, 48, 53); store<u8>(p, 48, 54); // "-00"
  }

  /**
   * A new trace id for group `g`'s trace header: 128 random bits as 32 lowercase hex digits; for
   * traceparent the whole header with a new span id; for B3 also a new span id (x-b3-spanid).
   * `nanos` (the request's clock reading) is mixed into `e` first, so VMs seeded alike still differ.
   */
  make(g: CGroup, e: Entropy, nanos: u64): void {
    const hi = e.mix(nanos);
    const lo = e.next();
    const kind = g.traceKind;
    this.hasSpan = false;
    if (kind == TRACE_TRACEPARENT) {
      writeHex16(this.buf + 3, hi);
      writeHex16(this.buf + 19, lo);
      writeHex16(this.buf + 36, nonZero(e.next()));
      this.ptr = this.buf;
      this.len = TRACEPARENT_LEN;
      return;
    }
    writeHex16(this.buf + 3, hi);
    writeHex16(this.buf + 19, lo);
    this.ptr = this.buf + 3;
    this.len = 32;
    if (kind == TRACE_B3) {
      writeHex16(this.span, nonZero(e.next()));
      this.hasSpan = true;
    }
  }
}

/** W3C and B3 forbid an all-zero id; 128 bits of zero are out of reach, 64 nearly so: made sure. */
@inline function nonZero(x: u64): u64 { return x == 0 ? 1 : x; }

/** `n` as 16 lowercase hex digits at p. */
export function writeHex16(p: usize, n: u64): void {
  for (let i = 0; i < 16; i++) {
    const d = <u32>((n >> (<u64>(15 - i) * 4)) & 15);
    store<u8>(p + <usize>i, <u8>(d < 10 ? 48 + d : 87 + d));
  }
}
