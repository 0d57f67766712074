// A name -> value table built with the RuleSet (service names, service hosts), so that finding a
// request's destination hashes its name once instead of comparing it with every name of every
// group. Hashing folds ASCII case when the table compares ignoring the request's case.
import { equalBytes, equalIgnoreCase, lowerAscii } from "./bytes";

const BUCKETS: u32 = 256;

function fnv1a(p: usize, l: usize, foldCase: bool): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i: usize = 0; i < l; i++) {
    const c = <u32>load<u8>(p + i);
    h = (h ^ (foldCase ? lowerAscii(c) : c)) * 0x01000193;
  }
  return h;
}

export class NameIndex {
  private readonly heads: StaticArray<i32> = new StaticArray<i32>(BUCKETS);
  private readonly next: Array<i32> = [];
  private readonly names: Array<Uint8Array> = [];
  private readonly values: Array<i32> = [];

  /** `ignoreCase`: a looked-up name matches ignoring its ASCII case (stored names are lowercase). */
  constructor(private ignoreCase: bool) {
    for (let i: u32 = 0; i < BUCKETS; i++) unchecked(this.heads[i] = -1);
  }

  /** Adds `name` -> `value`, unless the name is there already (the first one added wins). */
  add(name: Uint8Array, value: i32): void {
    if (this.get(name.dataStart, <usize>name.byteLength) >= 0) return;
    const b = fnv1a(name.dataStart, <usize>name.byteLength, this.ignoreCase) & (BUCKETS - 1);
    this.next.push(unchecked(this.heads[b]));
    unchecked(this.heads[b] = this.names.length);
    this.names.push(name);
    this.values.push(value);
  }

  /** The value of the name at p, or -1. */
  get(p: usize, l: usize): i32 {
    let e = unchecked(this.heads[fnv1a(p, l, this.ignoreCase) & (BUCKETS - 1)]);
    while (e >= 0) {
      const n = unchecked(this.names[e]);
      const hit = this.ignoreCase ? equalIgnoreCase(p, l, n.dataStart, <usize>n.byteLength) : equalBytes(p, l, n.dataStart, <usize>n.byteLength);
      if (hit) return unchecked(this.values[e]);
      e = unchecked(this.next[e]);
    }
    return -1;
  }
}
