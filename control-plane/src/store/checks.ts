// What both stores work out before a write: the If-Match precondition, the cross-group rules, the
// change a put makes, and the changes a rollback makes.
import { pointer, type FieldError } from "../model/errors.js";
import { parseLaneGroup, validateLaneGroups, type LaneGroup } from "../model/lanegroup.js";
import { diff } from "./diff.js";
import { ConflictError, ValidationError, type Expected, type GroupChange, type StoredGroup } from "./types.js";

export type Validation = { ok: true; value: LaneGroup } | { ok: false; errors: FieldError[] };

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

/** `input` checked on its own and against every stored group of another name. */
export function validateAmong(stored: StoredGroup[], input: unknown): Validation {
  const parsed = parseLaneGroup(input);
  if (!parsed.ok) return parsed;
  const errors = crossErrors(stored.filter((g) => g.name !== parsed.value.name).map((g) => g.lanegroup), parsed.value);
  return errors.length ? { ok: false, errors } : parsed;
}

/**
 * The change a put makes to the stored groups: ValidationError or ConflictError (If-Match), else
 * a create or a replace with its patch.
 */
export function putChange(stored: StoredGroup[], input: unknown, expected: Expected | undefined): { group: LaneGroup; created: boolean; change: GroupChange & { action: "create" | "replace" } } {
  const v = validateAmong(stored, input);
  if (!v.ok) throw new ValidationError(v.errors);
  const group = v.value;
  const before = stored.find((g) => g.name === group.name);
  checkExpected(group.name, before?.revision ?? 0, expected);
  const action = before ? "replace" : "create";
  const patch = before ? diff(before.lanegroup, group) : [{ op: "add" as const, path: "", value: group }];
  return { group, created: !before, change: { group: group.name, action, patch } };
}

/**
 * A rollback from the current groups to the state of an earlier revision: that state re-checked
 * (validation rules may have tightened since it was written; ValidationError if it no longer
 * passes), and one change per group whose content differs, in name order.
 */
export function rollbackPlan(current: StoredGroup[], target: StoredGroup[]): { wanted: Map<string, LaneGroup>; changes: GroupChange[] } {
  const errors: FieldError[] = [];
  const wanted = new Map<string, LaneGroup>();
  for (const g of target) {
    const r = parseLaneGroup(g.lanegroup);
    if (!r.ok) errors.push(...r.errors.map((e) => ({ path: `/lanegroups/${g.name}${e.path}`, message: e.message })));
    wanted.set(g.name, r.ok ? r.value : g.lanegroup);
  }
  if (errors.length) throw new ValidationError(errors);
  const now = new Map(current.map((g) => [g.name, g.lanegroup]));
  const changes: GroupChange[] = [];
  for (const name of [...new Set([...now.keys(), ...wanted.keys()])].sort()) {
    const a = now.get(name);
    const b = wanted.get(name);
    if (a && b) {
      const patch = diff(a, b);
      if (patch.length) changes.push({ group: name, action: "replace", patch });
    } else if (b) changes.push({ group: name, action: "create", patch: [{ op: "add", path: "", value: b }] });
    else if (a) changes.push({ group: name, action: "delete", patch: [{ op: "remove", path: "", old: a }] });
  }
  return { wanted, changes };
}
