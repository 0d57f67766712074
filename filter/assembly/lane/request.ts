// A read-only view of one request's headers, indexed straight from the host's serialized header map
// by the one pairs decoder (abi/pairs.ts). Nothing is copied; the index is reused from request to
// request. A malformed map reads as an empty request.
import { PairsIndex } from "../abi/pairs";
import { equalIgnoreCase, indexOf, isOws, utf8 } from "./bytes";
import { classifyUserAgent } from "./useragent";

const H_PATH = utf8(":path");
const H_METHOD = utf8(":method");
const H_AUTHORITY = utf8(":authority");
const H_HOST = utf8("host");
const H_COOKIE = utf8("cookie");
const H_USER_AGENT = utf8("user-agent");
const H_BAGGAGE = utf8("baggage");
const BAGGAGE_KEY = utf8("graylane");

export class RequestView extends PairsIndex {
  // Result of the last successful lookup (header, cookie, query parameter, baggage member).
  valPtr: usize = 0;
  valLen: usize = 0;

  pathPtr: usize = 0;
  pathLen: usize = 0; // without the query string
  queryPtr: usize = 0;
  queryLen: usize = 0;
  methodPtr: usize = 0;
  methodLen: usize = 0;
  hostPtr: usize = 0;
  hostLen: usize = 0; // without port, as sent (compare ignoring case)

  private uaDone: bool = false;
  private uaClasses: u32 = 0;

  /** Indexes a serialized header map; returns false (and an empty view) when it is malformed. */
  load(buf: usize, len: usize): bool {
    this.uaDone = false;
    this.pathPtr = this.pathLen = this.queryPtr = this.queryLen = 0;
    this.methodPtr = this.methodLen = this.hostPtr = this.hostLen = 0;
    if (!super.load(buf, len)) return false;
    if (this.find(H_PATH)) this.splitPath(this.valPtr, this.valLen);
    if (this.find(H_METHOD)) { this.methodPtr = this.valPtr; this.methodLen = this.valLen; }
    if (this.find(H_AUTHORITY) || this.find(H_HOST)) this.setHost(this.valPtr, this.valLen);
    return true;
  }

  private splitPath(p: usize, l: usize): void {
    let q = indexOf(p, l, changetype<usize>(QMARK), 1);
    let pathEnd = q < 0 ? l : <usize>q;
    this.pathPtr = p;
    this.pathLen = pathEnd;
    if (q >= 0) {
      let qs = p + <usize>q + 1;
      let ql = l - <usize>q - 1;
      const h = indexOf(qs, ql, changetype<usize>(HASH), 1);
      if (h >= 0) ql = <usize>h;
      this.queryPtr = qs;
      this.queryLen = ql;
    }
  }

  private setHost(p: usize, l: usize): void {
    // Strip the port; keep an IPv6 literal's brackets intact.
    let end = l;
    for (let i = l; i > 0; i--) {
      const c = load<u8>(p + i - 1);
      if (c == 58) { end = i - 1; break; } // ':'
      if (c < 48 || c > 57) break;
    }
    this.hostPtr = p;
    this.hostLen = end;
  }

  /** Finds the first header named `lowerName` from index `from`; its value goes to valPtr/valLen. */
  findFrom(lowerName: usize, nameLen: usize, from: i32): i32 {
    for (let i = from; i < this.count; i++) {
      if (equalIgnoreCase(this.nameAt(i), this.nameLenAt(i), lowerName, nameLen)) {
        this.valPtr = this.valueAt(i);
        this.valLen = this.valueLenAt(i);
        return i;
      }
    }
    return -1;
  }

  @inline find(lowerName: Uint8Array): bool {
    return this.findFrom(lowerName.dataStart, <usize>lowerName.byteLength, 0) >= 0;
  }

  /** Header value; an empty value counts as absent (nothing to match or route on). */
  header(lowerName: Uint8Array): bool {
    return this.find(lowerName) && this.valLen > 0;
  }

  /** Cookie `name` across every Cookie header ("a=1; b=2"). */
  cookie(name: Uint8Array): bool {
    let i = this.findFrom(H_COOKIE.dataStart, <usize>H_COOKIE.byteLength, 0);
    while (i >= 0) {
      if (findPair(this, this.valPtr, this.valLen, 59 /* ; */, name)) return true;
      i = this.findFrom(H_COOKIE.dataStart, <usize>H_COOKIE.byteLength, i + 1);
    }
    return false;
  }

  /** Query parameter `name` ("?a=1&b=2"), raw (not percent-decoded). */
  query(name: Uint8Array): bool {
    return this.queryLen > 0 && findPair(this, this.queryPtr, this.queryLen, 38 /* & */, name);
  }

  /** The `graylane` member of W3C baggage. */
  baggageLane(): bool {
    let i = this.findFrom(H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, 0);
    while (i >= 0) {
      if (findPair(this, this.valPtr, this.valLen, 44 /* , */, BAGGAGE_KEY)) {
        // drop member properties (";prop=x")
        const semi = indexOf(this.valPtr, this.valLen, changetype<usize>(SEMI), 1);
        if (semi >= 0) this.valLen = trimRight(this.valPtr, <usize>semi);
        return this.valLen > 0;
      }
      i = this.findFrom(H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, i + 1);
    }
    return false;
  }

  /** OS bits (low byte) and browser bits (second byte) of the User-Agent, computed once. */
  userAgentClasses(): u32 {
    if (!this.uaDone) {
      this.uaDone = true;
      this.uaClasses = this.find(H_USER_AGENT) ? classifyUserAgent(this.valPtr, this.valLen) : 0;
    }
    return this.uaClasses;
  }
}

// One-byte needles kept in static memory.
const QMARK = memory.data<u8>([63]);
const HASH = memory.data<u8>([35]);
const SEMI = memory.data<u8>([59]);

function trimRight(p: usize, l: usize): usize {
  while (l > 0 && isOws(load<u8>(p + l - 1))) l--;
  return l;
}

/**
 * Scans "k=v<sep>k=v" for key `name` (exact, surrounding whitespace ignored); sets view.valPtr/valLen
 * to the value. A bare "k" has an empty value.
 */
function findPair(view: RequestView, p: usize, l: usize, sep: u32, name: Uint8Array): bool {
  const np = name.dataStart;
  const nl = <usize>name.byteLength;
  let i: usize = 0;
  while (i <= l) {
    // one item: [i, j)
    let j = i;
    while (j < l && <u32>load<u8>(p + j) != sep) j++;
    let ks = i;
    while (ks < j && isOws(load<u8>(p + ks))) ks++;
    let eq = ks;
    while (eq < j && load<u8>(p + eq) != 61) eq++; // '='
    const kl = trimRight(p + ks, eq - ks);
    if (kl == nl && memory.compare(p + ks, np, nl) == 0) {
      if (eq < j) {
        let vs = eq + 1;
        while (vs < j && isOws(load<u8>(p + vs))) vs++;
        view.valPtr = p + vs;
        view.valLen = trimRight(p + vs, j - vs);
      } else {
        view.valPtr = p + j;
        view.valLen = 0;
      }
      return true;
    }
    i = j + 1;
  }
  return false;
}
