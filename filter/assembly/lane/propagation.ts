// W3C baggage: the lane rides as the `graylane` member; other members are kept as they were.
import { isOws, Scratch, utf8 } from "./bytes";
import { ID_BAGGAGE } from "./headerset";
import { RequestView } from "./request";

const KEY = utf8("graylane");

/** Appends to `out` the members of a baggage value except `graylane`, comma-separated. */
export function appendOtherMembers(out: Scratch, p: usize, l: usize): void {
  let i: usize = 0;
  while (i < l) {
    let j = i;
    while (j < l && load<u8>(p + j) != 44) j++; // ','
    let s = i;
    while (s < j && isOws(load<u8>(p + s))) s++;
    let e = j;
    while (e > s && isOws(load<u8>(p + e - 1))) e--;
    if (e > s && !isLaneMember(p + s, e - s)) {
      if (out.len > 0) out.pushByte(44);
      out.push(p + s, e - s);
    }
    i = j + 1;
  }
}

function isLaneMember(p: usize, l: usize): bool {
  const kl = <usize>KEY.byteLength;
  if (l < kl || memory.compare(p, KEY.dataStart, kl) != 0) return false;
  let k = kl;
  while (k < l && isOws(load<u8>(p + k))) k++;
  return k == l || load<u8>(p + k) == 61; // '='
}

/** Appends "graylane=<lane>" as the last member. */
export function appendLaneMember(out: Scratch, lane: Uint8Array): void {
  if (out.len > 0) out.pushByte(44);
  out.pushBytes(KEY);
  out.pushByte(61);
  out.pushBytes(lane);
}

/** Appends every baggage member except `graylane`, from every baggage header of the request. */
export function appendRequestBaggage(out: Scratch, view: RequestView): void {
  for (let i = view.firstOf(ID_BAGGAGE); i >= 0; i = view.nextOf(i)) appendOtherMembers(out, view.valPtr, view.valLen);
}

/** The baggage value to send on: the request's other members, then `graylane=<lane>`. */
export function outgoingBaggage(out: Scratch, view: RequestView, lane: Uint8Array): void {
  out.reset();
  appendRequestBaggage(out, view);
  appendLaneMember(out, lane);
}

/**
 * When the request's baggage carries a `graylane` member: its other members into `out` (reset first;
 * empty means the header goes) and true. False when there is nothing to strip.
 */
export function baggageWithoutLane(out: Scratch, view: RequestView): bool {
  if (!view.baggageLane()) return false;
  out.reset();
  appendRequestBaggage(out, view);
  return true;
}
