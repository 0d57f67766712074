// A header map as Envoy keeps one (ordered pairs, names lower-cased, several entries per name
// allowed) and the proxy-wasm wire encoding of such maps:
//
//   u32 count
//   count × (u32 name_len, u32 value_len)            little-endian
//   count × (name bytes, 0x00, value bytes, 0x00)
//
// Names and values are raw bytes throughout; strings are only produced for display.
import { asciiLower, binaryKey, type Bytes, fromUtf8, toBytes, utf8 } from "./bytes.js";

export interface HeaderEntry {
  /** Lower-cased name bytes. */
  name: Bytes;
  value: Bytes;
  /** binaryKey(name): what lookups compare. */
  key: string;
}

/** What callers may pass as headers: ordered pairs (string or raw bytes) or a plain record. */
export type HeaderInput =
  | ReadonlyArray<readonly [string | Bytes, string | Bytes]>
  | Readonly<Record<string, string | Bytes>>;

// Header names repeat from request to request: keep their lower-cased bytes and lookup key.
const nameCache = new Map<string, [Bytes, string]>();
function cachedName(name: string): [Bytes, string] {
  let hit = nameCache.get(name);
  if (!hit) {
    if (nameCache.size >= 4096) nameCache.clear();
    const lower = asciiLower(utf8(name));
    hit = [lower, binaryKey(lower)];
    nameCache.set(name, hit);
  }
  return hit;
}

export class HeaderMap {
  entries: HeaderEntry[] = [];

  constructor(input?: HeaderInput) {
    if (input) this.setAll(input);
  }

  static fromPairs(pairs: Array<[Bytes, Bytes]>): HeaderMap {
    const m = new HeaderMap();
    for (const [n, v] of pairs) m.add(n, v);
    return m;
  }

  setAll(input: HeaderInput): void {
    this.entries = [];
    const pairs = (Array.isArray(input) ? input : Object.entries(input as Record<string, string | Bytes>)) as ReadonlyArray<readonly [string | Bytes, string | Bytes]>;
    for (let i = 0; i < pairs.length; i++) {
      const [n, v] = pairs[i];
      if (typeof n === "string") {
        const [lower, key] = cachedName(n);
        this.entries.push({ name: lower, value: toBytes(v), key });
      } else {
        this.add(toBytes(n), toBytes(v));
      }
    }
  }

  get size(): number {
    return this.entries.length;
  }

  /** Sum of name and value lengths: what Envoy's proxy_get_header_map_size reports (HeaderMap::byteSize). */
  byteSize(): number {
    let n = 0;
    for (const e of this.entries) n += e.name.length + e.value.length;
    return n;
  }

  add(name: Bytes | string, value: Bytes | string): void {
    const lower = asciiLower(typeof name === "string" ? utf8(name) : name);
    this.entries.push({ name: lower, value: typeof value === "string" ? utf8(value) : value, key: binaryKey(lower) });
  }

  /** First value for `name`, as Envoy's get_header_map_value returns it. */
  get(name: Bytes | string): Bytes | undefined {
    const key = keyOf(name);
    for (const e of this.entries) if (e.key === key) return e.value;
    return undefined;
  }

  getAll(name: Bytes | string): Bytes[] {
    const key = keyOf(name);
    const out: Bytes[] = [];
    for (const e of this.entries) if (e.key === key) out.push(e.value);
    return out;
  }

  /** Sets the first entry named `name` and drops the others; appends when there is none. */
  replace(name: Bytes | string, value: Bytes | string): void {
    const v = typeof value === "string" ? utf8(value) : value;
    const key = keyOf(name);
    let found = false;
    this.entries = this.entries.filter((e) => {
      if (e.key !== key) return true;
      if (found) return false;
      found = true;
      e.value = v;
      return true;
    });
    if (!found) this.add(name, v);
  }

  remove(name: Bytes | string): void {
    const key = keyOf(name);
    if (this.entries.some((e) => e.key === key)) this.entries = this.entries.filter((e) => e.key !== key);
  }

  /** Pairs decoded as UTF-8 (invalid bytes become U+FFFD). */
  toStringPairs(): Array<[string, string]> {
    return this.entries.map((e) => [fromUtf8(e.name), fromUtf8(e.value)]);
  }

  serialize(): Bytes {
    return serializePairs(this.entries.map((e) => [e.name, e.value]));
  }
}

function keyOf(name: Bytes | string): string {
  return typeof name === "string" ? cachedName(name)[1] : binaryKey(asciiLower(name));
}

/** The proxy-wasm map encoding of `pairs`. */
export function serializePairs(pairs: ReadonlyArray<readonly [Bytes, Bytes]>): Bytes {
  let size = 4 + pairs.length * 8;
  for (const [n, v] of pairs) size += n.length + v.length + 2;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, pairs.length, true);
  let o = 4 + pairs.length * 8;
  pairs.forEach(([n, v], i) => {
    dv.setUint32(4 + i * 8, n.length, true);
    dv.setUint32(8 + i * 8, v.length, true);
    out.set(n, o);
    o += n.length + 1; // the 0x00 is already there
    out.set(v, o);
    o += v.length + 1;
  });
  return out;
}

/**
 * Decodes the proxy-wasm map encoding; null when malformed (short, lengths past the end, or a
 * missing 0x00 terminator). An empty buffer is an empty map (what SDKs send for "no metadata").
 * The returned arrays are copies, independent of `data`.
 */
export function deserializePairs(data: Bytes): Array<[Bytes, Bytes]> | null {
  if (data.length === 0) return [];
  if (data.length < 4) return null;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = dv.getUint32(0, true);
  if (count > (data.length - 4) / 8) return null;
  let o = 4 + count * 8;
  const out: Array<[Bytes, Bytes]> = [];
  for (let i = 0; i < count; i++) {
    const nl = dv.getUint32(4 + i * 8, true);
    const vl = dv.getUint32(8 + i * 8, true);
    if (o + nl + 1 + vl + 1 > data.length) return null;
    if (data[o + nl] !== 0 || data[o + nl + 1 + vl] !== 0) return null;
    const name = data.slice(o, o + nl);
    o += nl + 1;
    const value = data.slice(o, o + vl);
    o += vl + 1;
    out.push([name, value]);
  }
  return out;
}
