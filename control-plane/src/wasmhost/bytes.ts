// Byte/string helpers. Everything crossing the ABI is raw bytes (header values may be invalid
// UTF-8), so the host keeps bytes and converts only at its edges:
//  - `utf8` / `fromUtf8` for what people read and write (lossy decode: invalid bytes → U+FFFD);
//  - `binaryKey` for map keys: one char per byte (latin1), lossless, so two different byte strings
//    never collide however invalid they are.

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

export type Bytes = Uint8Array;
export const EMPTY: Bytes = new Uint8Array(0);

export function utf8(s: string): Bytes {
  // TextEncoder crosses into C++ on every call, which dominates for the short ASCII strings that
  // header names and values are; copy those in JS and leave the rest to the encoder.
  if (s.length > 256) return encoder.encode(s);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return encoder.encode(s);
    out[i] = c;
  }
  return out;
}

export function fromUtf8(b: Bytes): string {
  return decoder.decode(b);
}

/** string → UTF-8; bytes are copied so later changes by the caller do not leak in. */
export function toBytes(v: string | Bytes): Bytes {
  return typeof v === "string" ? utf8(v) : v.slice();
}

/** Lossless one-char-per-byte string of `b`, for use as a Map key. */
export function binaryKey(b: Bytes): string {
  // Short keys (header names, property paths): a plain loop beats fromCharCode.apply.
  if (b.length <= 64) {
    let s = "";
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return s;
  }
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

/** Inverse of binaryKey. */
export function fromBinaryKey(s: string): Bytes {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** ASCII-only lower-casing (what Envoy does to header names); other bytes are kept as they are. */
export function asciiLower(b: Bytes): Bytes {
  let i = 0;
  while (i < b.length && !(b[i] >= 0x41 && b[i] <= 0x5a)) i++;
  if (i === b.length) return b;
  const out = b.slice();
  for (; i < out.length; i++) if (out[i] >= 0x41 && out[i] <= 0x5a) out[i] |= 0x20;
  return out;
}

export function concat(parts: Bytes[]): Bytes {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function bytesEqual(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
