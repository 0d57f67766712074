// The header names the filter and an applied RuleSet read, interned to small ids when the RuleSet is
// built, so that RequestView.load matches a request's headers against all of them in one pass and
// every lookup after it is an array read (before, each lookup scanned the whole header block).
// Names compare as the request lookups always did: the request's name ignoring case, the RuleSet's
// name as given (the compiler writes them lowercase).
import { equalIgnoreCase, utf8 } from "./bytes";

// Ids of the names every set holds, in this order.
export const ID_PATH: i32 = 0;
export const ID_METHOD: i32 = 1;
export const ID_AUTHORITY: i32 = 2;
export const ID_HOST: i32 = 3;
export const ID_COOKIE: i32 = 4;
export const ID_USER_AGENT: i32 = 5;
export const ID_BAGGAGE: i32 = 6;
export const ID_CONTENT_TYPE: i32 = 7;
const FIXED: StaticArray<string> = [":path", ":method", ":authority", "host", "cookie", "user-agent", "baggage", "content-type"];

/** Name lengths with a bucket of their own; longer names share the last one. */
const LEN_BUCKETS: i32 = 48;

export class HeaderSet {
  readonly names: Array<Uint8Array> = [];
  /** Per name length, the last id interned with that length; ids of one length chain through sameLength. */
  private readonly byLength: StaticArray<i32> = new StaticArray<i32>(LEN_BUCKETS + 1);
  private readonly sameLength: Array<i32> = [];

  constructor() {
    for (let i = 0; i <= LEN_BUCKETS; i++) unchecked(this.byLength[i] = -1);
    for (let i = 0; i < FIXED.length; i++) this.id(utf8(FIXED[i]));
  }

  get size(): i32 { return this.names.length; }

  /** The id of `name`, interned if new; -1 for the empty name (a header the RuleSet does not use). */
  id(name: Uint8Array): i32 {
    const l = <usize>name.byteLength;
    if (l == 0) return -1;
    const found = this.lookup(name.dataStart, l);
    if (found >= 0) return found;
    const id = this.names.length;
    const b = <i32>min(l, <usize>LEN_BUCKETS);
    this.names.push(name);
    this.sameLength.push(unchecked(this.byLength[b]));
    unchecked(this.byLength[b] = id);
    return id;
  }

  /** The id of the header name at p (of a request: any case), or -1 when the set lacks it. */
  lookup(p: usize, l: usize): i32 {
    let id = unchecked(this.byLength[<i32>min(l, <usize>LEN_BUCKETS)]);
    while (id >= 0) {
      const n = unchecked(this.names[id]);
      if (equalIgnoreCase(p, l, n.dataStart, <usize>n.byteLength)) return id;
      id = unchecked(this.sameLength[id]);
    }
    return -1;
  }
}

/** The set a request view uses before any RuleSet: the fixed names and DESIGN.md's default lane and route headers. */
export const DEFAULT_HEADERS = new HeaderSet();
export const ID_DEFAULT_LANE: i32 = DEFAULT_HEADERS.id(utf8("x-graylane-lane"));
export const ID_DEFAULT_ROUTE: i32 = DEFAULT_HEADERS.id(utf8("x-graylane-route"));
