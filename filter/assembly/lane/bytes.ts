// Byte-range helpers. The hot path works on (pointer, length) pairs into host-provided buffers and
// never builds strings.

/** UTF-8 bytes of an ASCII/Unicode string, made once (at start or when a RuleSet is applied). */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

export function bytesToString(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength);
}

@inline export function lowerAscii(c: u32): u32 {
  return c - 65 < 26 ? c | 32 : c;
}

export function equalBytes(a: usize, alen: usize, b: usize, blen: usize): bool {
  if (alen != blen) return false;
  return memory.compare(a, b, alen) == 0;
}

/** a equals `lower` (already lowercase) ignoring ASCII case in a. */
export function equalIgnoreCase(a: usize, alen: usize, lower: usize, llen: usize): bool {
  if (alen != llen) return false;
  for (let i: usize = 0; i < alen; i++) {
    if (lowerAscii(load<u8>(a + i)) != <u32>load<u8>(lower + i)) return false;
  }
  return true;
}

export function startsWith(a: usize, alen: usize, p: usize, plen: usize): bool {
  if (plen > alen) return false;
  return memory.compare(a, p, plen) == 0;
}

/** Index of the first occurrence of needle in hay, or -1. */
export function indexOf(hay: usize, hlen: usize, needle: usize, nlen: usize): isize {
  if (nlen == 0) return 0;
  if (nlen > hlen) return -1;
  const first = load<u8>(needle);
  const last = hlen - nlen;
  for (let i: usize = 0; i <= last; i++) {
    if (load<u8>(hay + i) == first && memory.compare(hay + i, needle, nlen) == 0) return <isize>i;
  }
  return -1;
}

@inline export function contains(hay: usize, hlen: usize, needle: Uint8Array): bool {
  return indexOf(hay, hlen, needle.dataStart, <usize>needle.byteLength) >= 0;
}

@inline export function isOws(c: u32): bool {
  return c == 32 || c == 9;
}

/** A growable unmanaged scratch buffer, reused across requests: no allocation once warm. */
export class Scratch {
  ptr: usize = 0;
  cap: usize = 0;
  len: usize = 0;

  reset(): void { this.len = 0; }

  reserve(extra: usize): void {
    const need = this.len + extra;
    if (need <= this.cap) return;
    let cap = this.cap < 256 ? <usize>256 : this.cap;
    while (cap < need) cap <<= 1;
    this.ptr = this.ptr == 0 ? heap.alloc(cap) : heap.realloc(this.ptr, cap);
    this.cap = cap;
  }

  push(ptr: usize, len: usize): void {
    this.reserve(len);
    memory.copy(this.ptr + this.len, ptr, len);
    this.len += len;
  }

  pushBytes(b: Uint8Array): void { this.push(b.dataStart, <usize>b.byteLength); }

  pushByte(c: u32): void {
    this.reserve(1);
    store<u8>(this.ptr + this.len, <u8>c);
    this.len++;
  }

  /** Appends n as lowercase hex, `digits` characters wide. */
  pushHex(n: u64, digits: i32): void {
    this.reserve(<usize>digits);
    for (let i = digits - 1; i >= 0; i--) {
      const d = <u32>((n >> (<u64>i * 4)) & 15);
      this.pushByte(d < 10 ? 48 + d : 87 + d);
    }
  }

  pushDecimal(n: u32): void {
    if (n >= 10) this.pushDecimal(n / 10);
    this.pushByte(48 + n % 10);
  }
}
