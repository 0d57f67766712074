// A read-only view of one request's headers, indexed straight from the host's serialized header map
// by the one pairs decoder (abi/pairs.ts). Nothing is copied; the index is reused from request to
// request. Loading matches every header against the names of the view's HeaderSet (the filter's and
// the applied RuleSet's) in one pass; lookups are by id after that. A malformed map reads as an
// empty request.
import { PairsIndex } from "../abi/pairs";
import { indexOf, isOws, utf8 } from "./bytes";
import { DEFAULT_HEADERS, HeaderSet, ID_AUTHORITY, ID_BAGGAGE, ID_COOKIE, ID_HOST, ID_METHOD, ID_PATH, ID_USER_AGENT } from "./headerset";
import { classifyUserAgent } from "./useragent";

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

  /** The names this view picks out, and per id the first header carrying it (-1: none). */
  private names: HeaderSet = DEFAULT_HEADERS;
  private first: StaticArray<i32> = new StaticArray<i32>(DEFAULT_HEADERS.size);
  private last: StaticArray<i32> = new StaticArray<i32>(DEFAULT_HEADERS.size);
  /** Per header index, the next header with the same id (-1: the last one). */
  private links: usize = 0;
  private linksCap: i32 = 0;

  /** Picks out `names` from now on (the applied RuleSet's set). */
  use(names: HeaderSet): void {
    this.names = names;
    if (this.first.length < names.size) {
      this.first = new StaticArray<i32>(names.size);
      this.last = new StaticArray<i32>(names.size);
    }
    this.count = 0;
    this.clearIds();
  }

  /** No header found for any name yet (first[] is at least as long as the set: use() sees to it). */
  private clearIds(): void {
    const n = this.names.size;
    for (let i = 0; i < n; i++) unchecked(this.first[i] = -1);
  }

  /** Indexes a serialized header map; returns false (and an empty view) when it is malformed. */
  load(buf: usize, len: usize): bool {
    this.uaDone = false;
    this.pathPtr = this.pathLen = this.queryPtr = this.queryLen = 0;
    this.methodPtr = this.methodLen = this.hostPtr = this.hostLen = 0;
    this.clearIds();
    if (!super.load(buf, len)) return false;
    const n = this.count;
    if (n > this.linksCap) {
      if (this.links != 0) heap.free(this.links);
      this.linksCap = max(64, n);
      this.links = heap.alloc(<usize>this.linksCap << 2);
    }
    const names = this.names;
    for (let i = 0; i < n; i++) {
      const id = names.lookup(this.nameAt(i), this.nameLenAt(i));
      if (id < 0) continue;
      store<i32>(this.links + (<usize>i << 2), -1);
      const f = unchecked(this.first[id]);
      if (f < 0) unchecked(this.first[id] = i);
      else store<i32>(this.links + (<usize>unchecked(this.last[id]) << 2), i);
      unchecked(this.last[id] = i);
    }
    if (this.has(ID_PATH)) this.splitPath(this.valPtr, this.valLen);
    if (this.has(ID_METHOD)) { this.methodPtr = this.valPtr; this.methodLen = this.valLen; }
    if (this.has(ID_AUTHORITY) || this.has(ID_HOST)) this.setHost(this.valPtr, this.valLen);
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

  /** The index of the first header of name id `id` (of the view's set; -1 too), or -1; its value goes to valPtr/valLen. */
  firstOf(id: i32): i32 {
    if (id < 0) return -1;
    const i = unchecked(this.first[id]);
    if (i >= 0) this.at(i);
    return i;
  }

  /** The index of the next header after index `i` with the same name, or -1; its value goes to valPtr/valLen. */
  nextOf(i: i32): i32 {
    const j = load<i32>(this.links + (<usize>i << 2));
    if (j >= 0) this.at(j);
    return j;
  }

  @inline private at(i: i32): void {
    this.valPtr = this.valueAt(i);
    this.valLen = this.valueLenAt(i);
  }

  /** Whether the request has header `id` (its first value goes to valPtr/valLen). */
  @inline has(id: i32): bool {
    return this.firstOf(id) >= 0;
  }

  /** Whether header `id` occurs exactly once, with exactly the value at p (so writing it would change nothing). */
  carries(id: i32, p: usize, l: usize): bool {
    const i = this.firstOf(id);
    return i >= 0 && this.valLen == l && memory.compare(this.valPtr, p, l) == 0 && load<i32>(this.links + (<usize>i << 2)) < 0;
  }

  /** Header value; an empty value counts as absent (nothing to match or route on). */
  header(id: i32): bool {
    return this.has(id) && this.valLen > 0;
  }

  /** Cookie `name` across every Cookie header ("a=1; b=2"). */
  cookie(name: Uint8Array): bool {
    for (let i = this.firstOf(ID_COOKIE); i >= 0; i = this.nextOf(i)) {
      if (findPair(this, this.valPtr, this.valLen, 59 /* ; */, name)) return true;
    }
    return false;
  }

  /** Query parameter `name` ("?a=1&b=2"), raw (not percent-decoded). */
  query(name: Uint8Array): bool {
    return this.queryLen > 0 && findPair(this, this.queryPtr, this.queryLen, 38 /* & */, name);
  }

  /** The `graylane` member of W3C baggage. */
  baggageLane(): bool {
    for (let i = this.firstOf(ID_BAGGAGE); i >= 0; i = this.nextOf(i)) {
      if (findPair(this, this.valPtr, this.valLen, 44 /* , */, BAGGAGE_KEY)) {
        // drop member properties (";prop=x")
        const semi = indexOf(this.valPtr, this.valLen, changetype<usize>(SEMI), 1);
        if (semi >= 0) this.valLen = trimRight(this.valPtr, <usize>semi);
        return this.valLen > 0;
      }
    }
    return false;
  }

  /** OS bits (low byte) and browser bits (second byte) of the User-Agent, computed once. */
  userAgentClasses(): u32 {
    if (!this.uaDone) {
      this.uaDone = true;
      this.uaClasses = this.has(ID_USER_AGENT) ? classifyUserAgent(this.valPtr, this.valLen) : 0;
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
