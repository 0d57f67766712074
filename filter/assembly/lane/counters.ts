// Cumulative traffic counters per (group, lane, route, service, direction, source, status class,
// gRPC status)
// with a latency histogram each, in a flat open-addressing table of unmanaged memory: counting a
// request allocates nothing once the key has been seen. Names are interned for good, so counters
// survive RuleSet changes and stay cumulative for the life of the VM.
import { Scratch } from "./bytes";
import { ProtoWriter } from "./protowriter";

/** Upper bounds (ms) of the latency buckets; one more bucket holds everything slower. */
export const LATENCY_BOUNDS_MS: StaticArray<u32> = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
const NBUCKETS: usize = 14;
// Entry: key u64, requests u64, latency sum us u64, NBUCKETS × u64.
const ENTRY: usize = 8 * (3 + NBUCKETS);
const EMPTY: u64 = 0; // keys are never 0: names are interned from 1
const MAX_NAMES: u32 = 4095;

export class Interner {
  names: Array<string> = [""];
  bytes: Array<Uint8Array> = [new Uint8Array(0)];
  id(name: string): u32 {
    const i = this.names.indexOf(name);
    if (i >= 0) return <u32>i;
    if (<u32>this.names.length > MAX_NAMES) return MAX_NAMES; // "too many names" bucket, never crash
    this.names.push(name);
    this.bytes.push(Uint8Array.wrap(String.UTF8.encode(name)));
    return <u32>(this.names.length - 1);
  }
}

// Source bits 0-2 sit at key bits 3-5, source bit 3 (DECISION_SOURCE_INSTANCE = 8) at key bit 56:
// the keys of the sources 0-7 are those of the filter before the instance step. A gRPC response's
// status code + 1 sits at key bits 57-61 (0: not gRPC), so every other request keeps its old key.
export function counterKey(group: u32, lane: u32, route: u32, service: u32, direction: u32, source: u32, statusClass: u32, grpc: u32 = 0): u64 {
  return (<u64>(grpc & 31) << 57) | (<u64>(source & 8) << 53) | (<u64>group << 44) | (<u64>lane << 32) | (<u64>route << 20) | (<u64>service << 8)
    | (<u64>(direction & 3) << 6) | (<u64>(source & 7) << 3) | <u64>(statusClass & 7);
}

/** The gRPC status + 1 of a counter key (0: not a gRPC response). */
@inline export function keyGrpc(key: u64): u64 {
  return (key >> 57) & 31;
}

/** The decision source of a counter key. */
@inline export function keySource(key: u64): u64 {
  return ((key >> 3) & 7) | ((key >> 53) & 8);
}

export class Counters {
  readonly names: Interner = new Interner();
  private table: usize = 0;
  private cap: usize = 0;
  size: usize = 0;
  /** Requests counted so far, all keys (tells the reporter whether anything changed). */
  changes: u64 = 0;

  constructor() { this.grow(256); }

  private grow(cap: usize): void {
    const old = this.table;
    const oldCap = this.cap;
    this.table = heap.alloc(cap * ENTRY);
    memory.fill(this.table, 0, cap * ENTRY);
    this.cap = cap;
    if (old != 0) {
      for (let i: usize = 0; i < oldCap; i++) {
        const e = old + i * ENTRY;
        const key = load<u64>(e);
        if (key != EMPTY) memory.copy(this.slot(key), e, ENTRY);
      }
      heap.free(old);
    }
  }

  /** The entry for key, inserted zeroed if new. */
  private slot(key: u64): usize {
    let h = <usize>((key * 0x9e3779b97f4a7c15) >> 40) & (this.cap - 1);
    while (true) {
      const e = this.table + h * ENTRY;
      const k = load<u64>(e);
      if (k == key) return e;
      if (k == EMPTY) { store<u64>(e, key); return e; }
      h = (h + 1) & (this.cap - 1);
    }
    return 0;
  }

  count(key: u64, latencyMicros: u64, hasLatency: bool): void {
    if ((this.size + 1) * 10 > this.cap * 7) this.grow(this.cap << 1);
    const e = this.slot(key);
    if (load<u64>(e, 8) == 0) this.size++;
    store<u64>(e, load<u64>(e, 8) + 1, 8);
    this.changes++;
    if (hasLatency) {
      store<u64>(e, load<u64>(e, 16) + latencyMicros, 16);
      const ms = latencyMicros / 1000;
      let b: usize = 0;
      while (b < <usize>LATENCY_BOUNDS_MS.length && ms >= <u64>unchecked(LATENCY_BOUNDS_MS[<i32>b])) b++;
      const at = e + 24 + (b << 3);
      store<u64>(at, load<u64>(at) + 1);
    }
  }

  /** Requests counted under key (0 if never). */
  requests(key: u64): u64 {
    for (let i: usize = 0; i < this.cap; i++) {
      const e = this.table + i * ENTRY;
      if (load<u64>(e) == key) return load<u64>(e, 8);
    }
    return 0;
  }

  /**
   * Encodes every counter as a graylane.v1.TrafficReport into `out` (reused: no allocation once
   * warm). Field numbers follow proto/graylane/v1/traffic.proto; a test decodes the result with the
   * generated TypeScript code, so the two cannot drift apart.
   */
  report(out: Scratch, instanceId: Uint8Array, nodeId: Uint8Array, sequence: u64): void {
    const w = new ProtoWriter(out);
    out.reset();
    w.bytes(1, instanceId);
    w.varint(2, sequence);
    w.bytes(3, nodeId);
    for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) w.varint(4, <u64>unchecked(LATENCY_BOUNDS_MS[i]));
    const names = this.names.bytes;
    for (let i: usize = 0; i < this.cap; i++) {
      const e = this.table + i * ENTRY;
      const key = load<u64>(e);
      if (key == EMPTY) continue;
      const n = <u64>names.length;
      // Never trap on a key naming no interned name: one bad entry must not stop every report.
      if (((key >> 44) & 0xfff) >= n || ((key >> 32) & 0xfff) >= n || ((key >> 20) & 0xfff) >= n || ((key >> 8) & 0xfff) >= n) continue;
      const at = w.begin(5);
      w.bytes(1, names[<i32>((key >> 44) & 0xfff)]);
      w.bytes(2, names[<i32>((key >> 32) & 0xfff)]);
      w.bytes(3, names[<i32>((key >> 20) & 0xfff)]);
      w.bytes(4, names[<i32>((key >> 8) & 0xfff)]);
      w.varint(5, (key >> 6) & 3);
      w.varint(6, keySource(key));
      w.varint(7, key & 7);
      w.varint(8, load<u64>(e, 8));
      for (let b: usize = 0; b < NBUCKETS; b++) w.varint(9, load<u64>(e + 24 + (b << 3)));
      w.varint(10, load<u64>(e, 16));
      const grpc = keyGrpc(key);
      if (grpc != 0) w.varint(11, grpc - 1); // proto3 optional: present (even when 0, OK) only for gRPC
      w.end(at);
    }
  }
}
