// Signed overrides: the override header's value is `lane.expiry.signature`, where expiry is Unix
// seconds and signature is the unpadded base64url HMAC-SHA256 of `lane.expiry` under a key that
// reaches the filter only over the rule stream (never in its plugin configuration). A value that
// is malformed, expired, or signed by neither the current nor the previous key is refused.
import { HmacKey, Sha256 } from "./sha256";

export class SignedOverrides {
  readonly current: HmacKey = new HmacKey();
  /** Still accepted while a rotated key's values expire. */
  readonly previous: HmacKey = new HmacKey();
  private readonly sha: Sha256 = new Sha256();
  private readonly sig: usize = heap.alloc(32);
  private readonly want: usize = heap.alloc(32);
  /** The verified lane name, after verify() returned true. */
  lanePtr: usize = 0;
  laneLen: usize = 0;

  setKeys(cur: usize, curLen: usize, prev: usize, prevLen: usize): void {
    if (curLen > 0) this.current.load(cur, curLen, this.sha); else this.current.clear();
    if (prevLen > 0) this.previous.load(prev, prevLen, this.sha); else this.previous.clear();
  }

  get hasKey(): bool {
    return this.current.set || this.previous.set;
  }

  verify(p: usize, n: usize, nowSeconds: u64): bool {
    if (!this.hasKey || n < 47) return false;
    // lane "." expiry "." 43 signature characters
    const d2 = n - 44;
    if (load<u8>(p + d2) != 0x2e) return false;
    let d1: isize = -1;
    for (let i = <isize>d2 - 1; i >= 0; i--) {
      if (load<u8>(p + <usize>i) == 0x2e) { d1 = i; break; }
    }
    if (d1 <= 0) return false;
    const digits = d2 - <usize>d1 - 1;
    if (digits < 1 || digits > 12) return false;
    let expiry: u64 = 0;
    for (let i = <usize>d1 + 1; i < d2; i++) {
      const c = load<u8>(p + i);
      if (c < 0x30 || c > 0x39) return false;
      expiry = expiry * 10 + <u64>(c - 0x30);
    }
    if (expiry < nowSeconds) return false;
    if (!decodeSignature(p + d2 + 1, this.sig)) return false;
    let ok = false;
    if (this.current.set) {
      this.current.mac(p, d2, this.want, this.sha);
      ok = same32(this.want, this.sig);
    }
    if (!ok && this.previous.set) {
      this.previous.mac(p, d2, this.want, this.sha);
      ok = same32(this.want, this.sig);
    }
    if (!ok) return false;
    this.lanePtr = p;
    this.laneLen = <usize>d1;
    return true;
  }
}

/** Constant-time comparison of two 32-byte values. */
function same32(a: usize, b: usize): bool {
  let d: u64 = 0;
  for (let i: usize = 0; i < 32; i += 8) d |= load<u64>(a + i) ^ load<u64>(b + i);
  return d == 0;
}

function b64(c: u32): i32 {
  if (c >= 0x41 && c <= 0x5a) return <i32>(c - 0x41);
  if (c >= 0x61 && c <= 0x7a) return <i32>(c - 0x61 + 26);
  if (c >= 0x30 && c <= 0x39) return <i32>(c - 0x30 + 52);
  if (c == 0x2d) return 62; // -
  if (c == 0x5f) return 63; // _
  return -1;
}

/** 43 base64url characters → 32 bytes (the last character carries 2 zero bits). */
function decodeSignature(p: usize, out: usize): bool {
  let acc: u32 = 0;
  let bits: u32 = 0;
  let o: usize = 0;
  for (let i: usize = 0; i < 43; i++) {
    const v = b64(load<u8>(p + i));
    if (v < 0) return false;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      store<u8>(out + o++, <u8>(acc >> bits));
      acc &= (1 << bits) - 1;
    }
  }
  return o == 32 && acc == 0;
}
