// Checks both stores make before a write: the If-Match precondition and the cross-group rules.
import { pointer, type FieldError } from "../model/errors.js";
import { validateLaneGroups, type LaneGroup } from "../model/lanegroup.js";
import { ConflictError, type Expected } from "./types.js";

export function checkExpected(name: string, actual: number, expected: Expected | undefined): void {
  if (expected === undefined) return;
  if (expected === "*" ? actual === 0 : expected !== actual) throw new ConflictError(expected, actual, name);
}

/** Cross-group rules for `group` against the others, with paths relative to `group`'s document. */
export function crossErrors(others: LaneGroup[], group: LaneGroup): FieldError[] {
  const at = others.length; // last, so conflicts are reported on it, not on the stored groups
  const prefix = pointer([at]);
  return validateLaneGroups([...others, group]).map((e) =>
    e.path === prefix || e.path.startsWith(prefix + "/") ? { path: e.path.slice(prefix.length), message: e.message } : e,
  );
}
