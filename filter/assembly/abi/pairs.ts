// The proxy-wasm pairs encoding, the one decoder of it: header maps (proxy_get_header_map_pairs) and
// string-map properties (the route's `graylane` metadata) alike. Layout: u32 count, count × (u32 name
// size, u32 value size), then each name and value followed by a NUL. Decoding indexes the host's
// buffer in place (nothing copied) into an index reused from map to map, so it allocates only when a
// map has more entries than any before it.

export class PairsIndex {
  count: i32 = 0;
  private cap: i32 = 0;
  // Four u32 per entry: name ptr, name len, value ptr, value len.
  private index: usize = 0;

  /**
   * Indexes a serialized map. A malformed one (short, a count or a size running past the end, a
   * missing NUL slot) indexes as empty and returns false: all or nothing, never a partial map.
   */
  load(buf: usize, len: usize): bool {
    this.count = 0;
    if (buf == 0 || len < 4) return false;
    const n = <usize>load<u32>(buf);
    if (n > (len - 4) / 8) return false;
    this.ensure(<i32>n);
    let data = buf + 4 + n * 8;
    const end = buf + len;
    for (let i: usize = 0; i < n; i++) {
      const kl = <usize>load<u32>(buf + 4 + i * 8);
      const vl = <usize>load<u32>(buf + 8 + i * 8);
      // name, NUL, value, NUL must fit; written so that no sum can wrap around
      if (kl > end - data || vl > end - data - kl || end - data - kl - vl < 2) return false;
      const slot = this.index + (i << 4);
      store<u32>(slot, <u32>data);
      store<u32>(slot, <u32>kl, 4);
      store<u32>(slot, <u32>(data + kl + 1), 8);
      store<u32>(slot, <u32>vl, 12);
      data += kl + vl + 2;
    }
    this.count = <i32>n;
    return true;
  }

  private ensure(n: i32): void {
    if (n <= this.cap) return;
    let cap = this.cap < 64 ? 64 : this.cap;
    while (cap < n) cap <<= 1;
    if (this.index != 0) heap.free(this.index);
    this.index = heap.alloc(<usize>cap << 4);
    this.cap = cap;
  }

  @inline nameAt(i: i32): usize { return <usize>load<u32>(this.index + (<usize>i << 4)); }
  @inline nameLenAt(i: i32): usize { return <usize>load<u32>(this.index + (<usize>i << 4), 4); }
  @inline valueAt(i: i32): usize { return <usize>load<u32>(this.index + (<usize>i << 4), 8); }
  @inline valueLenAt(i: i32): usize { return <usize>load<u32>(this.index + (<usize>i << 4), 12); }
}
