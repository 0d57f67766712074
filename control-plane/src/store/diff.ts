// Revision diffs as RFC 6902 JSON Patch ops, so an audit entry says exactly which fields moved
// (`replace /lanes/0/weight`) instead of two whole documents to compare by eye. `replace` and
// `remove` also carry `old`, the value before (an extension patch appliers ignore), so the log alone
// tells what was there before. Applying the ops in order to the old document gives the new one.
import { pointer } from "../model/errors.js";

export type PatchOp =
  | { op: "add"; path: string; value: unknown }
  | { op: "remove"; path: string; old: unknown }
  | { op: "replace"; path: string; value: unknown; old: unknown };

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The ops turning `before` into `after` (arrays compared index by index). */
export function diff(before: unknown, after: unknown): PatchOp[] {
  const ops: PatchOp[] = [];
  walk(before as Json, after as Json, [], ops);
  return ops;
}

function walk(a: Json, b: Json, path: PropertyKey[], ops: PatchOp[]): void {
  if (Array.isArray(a) && Array.isArray(b)) {
    const common = Math.min(a.length, b.length);
    for (let i = 0; i < common; i++) walk(a[i], b[i], [...path, i], ops);
    for (let i = common; i < b.length; i++) ops.push({ op: "add", path: pointer([...path, i]), value: b[i] });
    // highest index first, so each index is still valid when its op runs
    for (let i = a.length - 1; i >= common; i--) ops.push({ op: "remove", path: pointer([...path, i]), old: a[i] });
    return;
  }
  if (isObject(a) && isObject(b)) {
    for (const k of Object.keys(a)) {
      if (!(k in b)) ops.push({ op: "remove", path: pointer([...path, k]), old: a[k] });
      else walk(a[k], b[k], [...path, k], ops);
    }
    for (const k of Object.keys(b)) if (!(k in a)) ops.push({ op: "add", path: pointer([...path, k]), value: b[k] });
    return;
  }
  if (a !== b) ops.push({ op: "replace", path: pointer(path), value: b, old: a });
}
