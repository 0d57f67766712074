// The Set-Cookie value that hands an anonymous user their generated sticky id (docs/decisions.md
// "Sticky key order"): `<cookie>=<id>; Path=/[; Max-Age=N]; HttpOnly; SameSite=Lax`.
import { Scratch, utf8 } from "./bytes";
import { CGroup } from "./rules";

const COOKIE_PATH = utf8("; Path=/");
const COOKIE_MAX_AGE = utf8("; Max-Age=");
const COOKIE_FLAGS = utf8("; HttpOnly; SameSite=Lax");

/** Writes the cookie of group `g` carrying the 16-byte id at `id` into `out` (reset first). */
export function formatStickyCookie(out: Scratch, g: CGroup, id: usize): void {
  out.reset();
  out.pushBytes(g.stickyCookie);
  out.pushByte(61); // '='
  out.push(id, 16);
  out.pushBytes(COOKIE_PATH);
  if (g.cookieMaxAge > 0) {
    out.pushBytes(COOKIE_MAX_AGE);
    out.pushDecimal(g.cookieMaxAge);
  }
  out.pushBytes(COOKIE_FLAGS);
}
