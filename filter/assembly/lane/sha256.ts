// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) over linear memory, for signed overrides. No
// allocation per call: the key's inner and outer states are computed once when a key arrives, so a
// verification costs the message blocks plus one outer block.

const K: StaticArray<u32> = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];
const IV: StaticArray<u32> = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/** A running SHA-256: 8 state words, a 64-byte block buffer, the message length so far. */
export class Sha256 {
  readonly h: StaticArray<u32> = new StaticArray<u32>(8);
  private readonly w: StaticArray<u32> = new StaticArray<u32>(64);
  private readonly block: usize = heap.alloc(64);
  private fill: usize = 0;
  private total: u64 = 0;

  reset(): void {
    for (let i = 0; i < 8; i++) unchecked(this.h[i] = IV[i]);
    this.fill = 0;
    this.total = 0;
  }

  /** Continues from a saved state that has absorbed `total` bytes (a multiple of 64). */
  resume(state: StaticArray<u32>, total: u64): void {
    for (let i = 0; i < 8; i++) unchecked(this.h[i] = state[i]);
    this.fill = 0;
    this.total = total;
  }

  update(p: usize, n: usize): void {
    this.total += <u64>n;
    while (n > 0) {
      const take = min<usize>(64 - this.fill, n);
      memory.copy(this.block + this.fill, p, take);
      this.fill += take;
      p += take;
      n -= take;
      if (this.fill == 64) { this.compress(); this.fill = 0; }
    }
  }

  /** Pads, finishes, and writes the 32-byte digest to `out`. */
  final(out: usize): void {
    const bits = this.total << 3;
    store<u8>(this.block + this.fill, 0x80);
    this.fill++;
    if (this.fill > 56) {
      memory.fill(this.block + this.fill, 0, 64 - this.fill);
      this.compress();
      this.fill = 0;
    }
    memory.fill(this.block + this.fill, 0, 56 - this.fill);
    store<u64>(this.block + 56, bswap<u64>(bits));
    this.compress();
    for (let i = 0; i < 8; i++) store<u32>(out + (<usize>i << 2), bswap<u32>(unchecked(this.h[i])));
  }

  private compress(): void {
    const w = this.w;
    for (let i = 0; i < 16; i++) unchecked(w[i] = bswap<u32>(load<u32>(this.block + (<usize>i << 2))));
    for (let i = 16; i < 64; i++) {
      const a = unchecked(w[i - 15]);
      const b = unchecked(w[i - 2]);
      const s0 = rotr<u32>(a, 7) ^ rotr<u32>(a, 18) ^ (a >>> 3);
      const s1 = rotr<u32>(b, 17) ^ rotr<u32>(b, 19) ^ (b >>> 10);
      unchecked(w[i] = unchecked(w[i - 16]) + s0 + unchecked(w[i - 7]) + s1);
    }
    const h = this.h;
    let a = unchecked(h[0]), b = unchecked(h[1]), c = unchecked(h[2]), d = unchecked(h[3]);
    let e = unchecked(h[4]), f = unchecked(h[5]), g = unchecked(h[6]), k = unchecked(h[7]);
    for (let i = 0; i < 64; i++) {
      const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = k + S1 + ch + unchecked(K[i]) + unchecked(w[i]);
      const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = S0 + maj;
      k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    unchecked(h[0] += a); unchecked(h[1] += b); unchecked(h[2] += c); unchecked(h[3] += d);
    unchecked(h[4] += e); unchecked(h[5] += f); unchecked(h[6] += g); unchecked(h[7] += k);
  }
}

/** An HMAC-SHA256 key with its inner and outer states precomputed. */
export class HmacKey {
  private readonly inner: StaticArray<u32> = new StaticArray<u32>(8);
  private readonly outer: StaticArray<u32> = new StaticArray<u32>(8);
  private readonly pad: usize = heap.alloc(64);
  private readonly mid: usize = heap.alloc(32);
  set: bool = false;

  /** Loads a key (longer than 64 bytes: hashed first, as RFC 2104 says). */
  load(key: usize, n: usize, s: Sha256): void {
    memory.fill(this.pad, 0, 64);
    if (n > 64) { s.reset(); s.update(key, n); s.final(this.pad); }
    else memory.copy(this.pad, key, n);
    this.absorb(0x36, this.inner, s);
    this.absorb(0x36 ^ 0x5c, this.outer, s); // the pad holds key ^ 0x36 now
    memory.fill(this.pad, 0, 64);
    this.set = true;
  }

  clear(): void {
    this.set = false;
  }

  private absorb(x: u8, into: StaticArray<u32>, s: Sha256): void {
    for (let i: usize = 0; i < 64; i++) store<u8>(this.pad + i, load<u8>(this.pad + i) ^ x);
    s.reset();
    s.update(this.pad, 64);
    for (let i = 0; i < 8; i++) unchecked(into[i] = s.h[i]);
  }

  /** HMAC(key, message) → 32 bytes at `out`. */
  mac(p: usize, n: usize, out: usize, s: Sha256): void {
    s.resume(this.inner, 64);
    s.update(p, n);
    s.final(this.mid);
    s.resume(this.outer, 64);
    s.update(this.mid, 32);
    s.final(out);
  }
}
