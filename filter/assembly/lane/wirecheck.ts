// Checks that RuleSet bytes are well-formed protobuf of the expected shape BEFORE the generated
// as-proto decoder sees them: that decoder asserts (traps) on truncated or mistyped input, and a trap
// would take the whole VM down. After this check decoding cannot run out of bounds.

// Field kinds: V varint, L length-delimited bytes/string, or a message id (>= 10) for submessages.
const V: u8 = 1;
const L: u8 = 2;
const RULESET: u8 = 10;
const GROUP: u8 = 11;
const STICKY: u8 = 12;
const SERVICE: u8 = 13;
const LANE: u8 = 14;
const BLOCK: u8 = 15;
const CONDITION: u8 = 16;
const DFA: u8 = 17;

// Per message: the kind of fields 1..n (0 = unknown field, skipped if its wire type is valid).
const SCHEMA: StaticArray<StaticArray<u8>> = [
  /* RuleSet   */ [L, GROUP, L, DFA],
  /* Group     */ [L, SERVICE, LANE, L, L, L, V, V, L, L, STICKY, V, V],
  /* StickyKey */ [L, L, V, V],
  /* Service   */ [L, L, L],
  /* Lane      */ [L, L, V, BLOCK, V, V],
  /* MatchBlock*/ [CONDITION],
  /* Condition */ [V, L, V, L, V, L, V],
  /* Dfa       */ [L, L, V, V, L, L],
];

// The table as data, for test/unit/lane-wirecheck.test.ts, which compares it with rules.proto's
// descriptors (through the test entry; the release module does not reference these).
export const WIRE_VARINT: u8 = V;
export const WIRE_BYTES: u8 = L;
export const WIRE_FIRST_MESSAGE: u8 = RULESET;
export function schemaMessageCount(): i32 { return SCHEMA.length; }
export function schemaFieldCount(message: i32): i32 { return SCHEMA[message].length; }
/** Kind of field number `field` (1-based) of message id `message` (0 = RuleSet, as in SCHEMA). */
export function schemaFieldKind(message: i32, field: i32): u8 { return SCHEMA[message][field - 1]; }

const MAX_DEPTH = 8;

let pos: usize = 0;
export let wireError: string = "";

function varint(end: usize): bool {
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return false;
    const b = load<u8>(pos++);
    if (b < 0x80) return true;
  }
  return false;
}

function varint32(end: usize): u64 {
  let v: u64 = 0;
  for (let i: u64 = 0; i < 10; i++) {
    if (pos >= end) return u64.MAX_VALUE;
    const b = load<u8>(pos++);
    if (i < 5) v |= <u64>(b & 0x7f) << (7 * i);
    if (b < 0x80) return v;
  }
  return u64.MAX_VALUE;
}

function message(kind: u8, end: usize, depth: i32): bool {
  if (depth > MAX_DEPTH) { wireError = "nesting too deep"; return false; }
  const fields = SCHEMA[kind - RULESET];
  while (pos < end) {
    const at = pos;
    const tag = varint32(end);
    if (tag == u64.MAX_VALUE || tag > <u64>u32.MAX_VALUE) { wireError = "bad tag at byte " + at.toString(); return false; }
    const field = <u32>(tag >> 3);
    const wire = <u32>(tag & 7);
    if (field == 0) { wireError = "field 0 at byte " + at.toString(); return false; }
    const expect: u8 = field <= <u32>fields.length ? fields[field - 1] : 0;
    if (expect == V && wire != 0 || expect >= L && wire != 2) {
      wireError = "field " + field.toString() + " has wire type " + wire.toString() + " at byte " + at.toString();
      return false;
    }
    if (wire == 0) {
      if (!varint(end)) { wireError = "truncated varint at byte " + at.toString(); return false; }
    } else if (wire == 1) {
      if (end - pos < 8) { wireError = "truncated fixed64 at byte " + at.toString(); return false; }
      pos += 8;
    } else if (wire == 5) {
      if (end - pos < 4) { wireError = "truncated fixed32 at byte " + at.toString(); return false; }
      pos += 4;
    } else if (wire == 2) {
      const len = varint32(end);
      if (len == u64.MAX_VALUE || len > <u64>(end - pos)) { wireError = "length past the end at byte " + at.toString(); return false; }
      const subEnd = pos + <usize>len;
      if (expect >= RULESET) {
        if (!message(expect, subEnd, depth + 1)) return false;
      }
      pos = subEnd;
    } else {
      wireError = "unsupported wire type " + wire.toString() + " at byte " + at.toString();
      return false;
    }
  }
  return true;
}

/** True when `bytes` is a well-formed RuleSet encoding; otherwise `wireError` says where it is not. */
export function checkRuleSetWire(bytes: Uint8Array): bool {
  wireError = "";
  pos = bytes.dataStart;
  return message(RULESET, bytes.dataStart + <usize>bytes.byteLength, 0);
}
