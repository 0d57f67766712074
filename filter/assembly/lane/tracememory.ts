// Trace memory: trace id -> lane, so a hop whose app forwards only its trace header gets its lane
// back on the outbound side. It lives in proxy-wide shared data as a fixed number of slots
// (slot = fingerprint mod N), each overwritten by newer entries and ignored after its TTL, so memory
// stays flat under any load. The host side (get/set) is behind SharedStore; this file is pure.
import { Scratch } from "./bytes";
import { fingerprint64 } from "./murmur3";
import { CGroup } from "./rules";

export abstract class SharedStore {
  valPtr: usize = 0;
  valLen: usize = 0;
  /** Reads a key; on true the value is at valPtr/valLen until release(). */
  abstract get(keyPtr: usize, keyLen: usize): bool;
  abstract release(): void;
  abstract set(keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize): void;
}

const HEADER_BYTES: usize = 17; // fingerprint u64, time ms u64, lane length u8

export class TraceMemory {
  slots: u32 = 65536;
  ttlMillis: u64 = 60000;
  private key: Scratch = new Scratch();
  private value: Scratch = new Scratch();

  constructor(public store: SharedStore) {}

  private slotKey(fp: u64): void {
    this.key.reset();
    this.key.pushBytes(PREFIX);
    this.key.pushDecimal(<u32>(fp % <u64>this.slots));
  }

  /** The lane index the trace has in this group, or -1. */
  lookup(g: CGroup, tp: usize, tl: usize, nowMillis: u64): i32 {
    const fp = fingerprint64(tp, tl, g.seed);
    this.slotKey(fp);
    if (!this.store.get(this.key.ptr, this.key.len)) return -1;
    let lane = -1;
    const p = this.store.valPtr;
    const l = this.store.valLen;
    if (l >= HEADER_BYTES && load<u64>(p) == fp) {
      const at = load<u64>(p, 8);
      const nl = <usize>load<u8>(p, 16);
      if (nowMillis - at <= this.ttlMillis && nowMillis >= at && l == HEADER_BYTES + nl) {
        lane = g.laneByName(p + HEADER_BYTES, nl);
      }
    }
    this.store.release();
    return lane;
  }

  remember(g: CGroup, tp: usize, tl: usize, lane: i32, nowMillis: u64): void {
    const fp = fingerprint64(tp, tl, g.seed);
    this.slotKey(fp);
    const name = g.lanes[lane].name;
    const nl = <usize>min(name.byteLength, 255);
    const v = this.value;
    v.reset();
    v.reserve(HEADER_BYTES + nl);
    store<u64>(v.ptr, fp);
    store<u64>(v.ptr, nowMillis, 8);
    store<u8>(v.ptr, <u8>nl, 16);
    memory.copy(v.ptr + HEADER_BYTES, name.dataStart, nl);
    this.store.set(this.key.ptr, this.key.len, v.ptr, HEADER_BYTES + nl);
  }
}

const PREFIX = Uint8Array.wrap(String.UTF8.encode("graylane/tm/"));
