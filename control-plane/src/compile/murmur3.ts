// MurmurHash3 x86_32 (little-endian blocks, as the reference implementation), the sticky-bucket
// hash the filter also implements; ../shared/test-vectors/hash.json fixes both.

export function murmur3_32(data: Uint8Array, seed = 0): number {
  let h = seed >>> 0;
  const blocks = data.length >> 2;
  for (let i = 0; i < blocks; i++) {
    const o = i << 2;
    let k = data[o] | (data[o + 1] << 8) | (data[o + 2] << 16) | (data[o + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = blocks << 2;
  let k = 0;
  switch (data.length & 3) {
    case 3: k ^= data[tail + 2] << 16; // falls through
    case 2: k ^= data[tail + 1] << 8; // falls through
    case 1:
      k ^= data[tail];
      k = Math.imul(k, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      h ^= k;
  }
  h ^= data.length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const BUCKETS = 10_000;
const encoder = new TextEncoder();

/** The sticky bucket of `key` under `salt`: murmur3(utf8(salt ":" key), 0) % 10000. */
export function stickyBucket(salt: string, key: string): number {
  return murmur3_32(encoder.encode(`${salt}:${key}`), 0) % BUCKETS;
}
