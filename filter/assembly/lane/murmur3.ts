// MurmurHash3 x86_32 over bytes in memory (little-endian blocks, as the reference implementation);
// ../shared/test-vectors/hash.json fixes it for the filter and the control plane alike.

@inline function rotl(x: u32, r: u32): u32 { return (x << r) | (x >>> (32 - r)); }

@inline function mix(k: u32): u32 {
  k *= 0xcc9e2d51;
  k = rotl(k, 15);
  return k * 0x1b873593;
}

export function murmur3(ptr: usize, len: usize, seed: u32): u32 {
  let h = seed;
  const blocks = len >> 2;
  for (let i: usize = 0; i < blocks; i++) {
    h ^= mix(load<u32>(ptr + (i << 2)));
    h = rotl(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const tail = ptr + (blocks << 2);
  let k: u32 = 0;
  const rest = len & 3;
  if (rest == 3) k ^= <u32>load<u8>(tail + 2) << 16;
  if (rest >= 2) k ^= <u32>load<u8>(tail + 1) << 8;
  if (rest >= 1) {
    k ^= <u32>load<u8>(tail);
    h ^= mix(k);
  }
  h ^= <u32>len;
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/** 64-bit fingerprint from two murmur3 passes with different seeds. */
export function fingerprint64(ptr: usize, len: usize, seed: u32): u64 {
  return (<u64>murmur3(ptr, len, seed) << 32) | <u64>murmur3(ptr, len, seed ^ 0x9e3779b9);
}
