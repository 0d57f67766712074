// A small strict JSON reader for the plugin configuration (parsed once, in on_configure; never per
// request). Errors name the byte offset.

export const J_NULL: u8 = 0;
export const J_BOOL: u8 = 1;
export const J_NUMBER: u8 = 2;
export const J_STRING: u8 = 3;
export const J_ARRAY: u8 = 4;
export const J_OBJECT: u8 = 5;

export class JsonValue {
  kind: u8 = J_NULL;
  bool: bool = false;
  num: u64 = 0;
  str: string = "";
  keys: Array<string> = [];
  items: Array<JsonValue> = [];

  get(key: string): JsonValue | null {
    const i = this.keys.indexOf(key);
    return i < 0 ? null : this.items[i];
  }
}

export let jsonError: string = "";

class Parser {
  pos: usize;
  constructor(public start: usize, public end: usize) { this.pos = start; }

  err(what: string): JsonValue | null {
    if (jsonError.length == 0) jsonError = what + " at byte " + (this.pos - this.start).toString();
    return null;
  }

  ws(): void {
    while (this.pos < this.end) {
      const c = load<u8>(this.pos);
      if (c != 32 && c != 9 && c != 10 && c != 13) break;
      this.pos++;
    }
  }

  lit(word: string): bool {
    const n = <usize>word.length;
    if (this.end - this.pos < n) return false;
    for (let i: usize = 0; i < n; i++) if (<u32>load<u8>(this.pos + i) != <u32>word.charCodeAt(<i32>i)) return false;
    this.pos += n;
    return true;
  }

  value(depth: i32): JsonValue | null {
    if (depth > 16) return this.err("nesting too deep");
    this.ws();
    if (this.pos >= this.end) return this.err("unexpected end");
    const c = load<u8>(this.pos);
    const v = new JsonValue();
    if (c == 123) { // {
      v.kind = J_OBJECT;
      this.pos++;
      this.ws();
      if (this.pos < this.end && load<u8>(this.pos) == 125) { this.pos++; return v; }
      while (true) {
        this.ws();
        if (this.pos >= this.end || load<u8>(this.pos) != 34) return this.err("expected a key");
        const k = this.string();
        if (k == null) return null;
        this.ws();
        if (this.pos >= this.end || load<u8>(this.pos) != 58) return this.err("expected ':'");
        this.pos++;
        const item = this.value(depth + 1);
        if (item == null) return null;
        v.keys.push(k);
        v.items.push(item);
        this.ws();
        if (this.pos < this.end && load<u8>(this.pos) == 44) { this.pos++; continue; }
        if (this.pos < this.end && load<u8>(this.pos) == 125) { this.pos++; return v; }
        return this.err("expected ',' or '}'");
      }
    }
    if (c == 91) { // [
      v.kind = J_ARRAY;
      this.pos++;
      this.ws();
      if (this.pos < this.end && load<u8>(this.pos) == 93) { this.pos++; return v; }
      while (true) {
        const item = this.value(depth + 1);
        if (item == null) return null;
        v.items.push(item);
        this.ws();
        if (this.pos < this.end && load<u8>(this.pos) == 44) { this.pos++; continue; }
        if (this.pos < this.end && load<u8>(this.pos) == 93) { this.pos++; return v; }
        return this.err("expected ',' or ']'");
      }
    }
    if (c == 34) {
      const s = this.string();
      if (s == null) return null;
      v.kind = J_STRING;
      v.str = s;
      return v;
    }
    if (this.lit("true")) { v.kind = J_BOOL; v.bool = true; return v; }
    if (this.lit("false")) { v.kind = J_BOOL; return v; }
    if (this.lit("null")) return v;
    if (c >= 48 && c <= 57) {
      // Only non-negative integers: every number in the plugin configuration is a count.
      let n: u64 = 0;
      while (this.pos < this.end) {
        const d = load<u8>(this.pos);
        if (d < 48 || d > 57) break;
        if (n > 0xffffffffff) return this.err("number too large");
        n = n * 10 + <u64>(d - 48);
        this.pos++;
      }
      if (this.pos < this.end) {
        const d = load<u8>(this.pos);
        if (d == 46 || d == 101 || d == 69) return this.err("want a whole number");
      }
      v.kind = J_NUMBER;
      v.num = n;
      return v;
    }
    if (c == 45) return this.err("negative number");
    return this.err("unexpected character");
  }

  string(): string | null {
    this.pos++; // opening quote
    let out = "";
    let run = this.pos;
    while (this.pos < this.end) {
      const c = load<u8>(this.pos);
      if (c == 34) {
        out += String.UTF8.decodeUnsafe(run, this.pos - run);
        this.pos++;
        return out;
      }
      if (c < 32) { this.err("control character in string"); return null; }
      if (c == 92) {
        out += String.UTF8.decodeUnsafe(run, this.pos - run);
        this.pos++;
        if (this.pos >= this.end) break;
        const e = load<u8>(this.pos);
        if (e == 110) out += "\n";
        else if (e == 116) out += "\t";
        else if (e == 114) out += "\r";
        else if (e == 98) out += "\b";
        else if (e == 102) out += "\f";
        else if (e == 117) {
          if (this.end - this.pos < 5) break;
          let code: i32 = 0;
          for (let k: usize = 1; k <= 4; k++) {
            const h = <i32>load<u8>(this.pos + k);
            const d = h >= 48 && h <= 57 ? h - 48 : (h | 32) >= 97 && (h | 32) <= 102 ? (h | 32) - 87 : -1;
            if (d < 0) { this.err("bad \\u escape"); return null; }
            code = (code << 4) | d;
          }
          out += String.fromCharCode(code);
          this.pos += 4;
        } else if (e == 34 || e == 92 || e == 47) out += String.fromCharCode(e);
        else { this.err("bad escape"); return null; }
        this.pos++;
        run = this.pos;
        continue;
      }
      this.pos++;
    }
    this.err("unterminated string");
    return null;
  }
}

export function parseJson(p: usize, l: usize): JsonValue | null {
  jsonError = "";
  const parser = new Parser(p, p + l);
  const v = parser.value(0);
  if (v == null) return null;
  parser.ws();
  if (parser.pos != parser.end) return parser.err("trailing characters");
  return v;
}

const B64: string = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard or URL-safe base64, padding optional; null when invalid. */
export function base64Decode(s: string): Uint8Array | null {
  let n = s.length;
  while (n > 0 && s.charCodeAt(n - 1) == 61) n--;
  if (n % 4 == 1) return null;
  const out = new Uint8Array((n * 3) >> 2);
  let acc: u32 = 0;
  let bits: u32 = 0;
  let o = 0;
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c == 45) c = 43; // '-' -> '+'
    if (c == 95) c = 47; // '_' -> '/'
    const v = B64.indexOf(String.fromCharCode(c));
    if (v < 0) return null;
    acc = (acc << 6) | <u32>v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = <u8>(acc >> bits);
    }
  }
  return out;
}
