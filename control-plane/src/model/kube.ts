// LaneGroup and Release as Kubernetes objects (graylane.io/v1alpha1, cluster-scoped): the model
// document an object stands for (its spec, named by metadata.name), the object path of an error the
// model reports (`/lanes/0/weight` → `/spec/lanes/0/weight`, `/name` → `/metadata/name`), and which
// LaneGroup objects make up the RuleSet when some are invalid anyway (written while the admission
// webhook was down, or two groups claiming one service): the older one wins.
//
// The admission webhook (api/admission.ts) and the Kubernetes store use these, so both map objects
// and paths one way. No rule lives here: every check is parseLaneGroup's or validateLaneGroups'.
import { pointer, type FieldError } from "./errors.js";
import { parseLaneGroup, validateLaneGroups, type LaneGroup, type ParseOptions } from "./lanegroup.js";

/** The parts of an object these functions read. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; creationTimestamp?: string; deletionTimestamp?: string; [k: string]: unknown };
  spec?: unknown;
  [k: string]: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The model document of an object (what REST's PUT or POST body would be): spec's fields with the
 * name from metadata.name. A spec that is no object, or that carries a name of its own, is an error
 * at its object path; the document is then absent.
 */
export function modelDocument(obj: KubeObject): { ok: true; document: Record<string, unknown> } | { ok: false; errors: FieldError[] } {
  const spec = obj.spec ?? {};
  if (!isObject(spec)) return { ok: false, errors: [{ path: "/spec", message: "must be an object" }] };
  if ("name" in spec) return { ok: false, errors: [{ path: "/spec/name", message: "unknown field name (the name is metadata.name)" }] };
  const name = obj.metadata?.name;
  return { ok: true, document: { ...spec, name } };
}

/** A model error's path in the object: the name is metadata.name, everything else is under spec. */
export function objectPath(path: string): string {
  if (path === "/name" || path.startsWith("/name/")) return "/metadata" + path;
  return "/spec" + path;
}

/** Model errors at their object paths. */
export const objectErrors = (errors: FieldError[]): FieldError[] => errors.map((e) => ({ path: objectPath(e.path), message: e.message }));

/** One line per problem, `path: message`: how the webhook and a Ready=False condition say it. */
export const describeErrors = (errors: FieldError[]): string => errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ");

// ---- which LaneGroup objects the RuleSet holds ----

export interface RejectedGroup {
  name: string;
  /** Invalid: the object fails the model on its own; Conflict: it clashes with an older group. */
  reason: "Invalid" | "Conflict";
  /** At object paths (`/spec/...`). */
  errors: FieldError[];
  /** describeErrors(errors), for a condition's message. */
  message: string;
}

export interface GroupSelection {
  /** The groups the RuleSet holds, parsed (defaults filled in), in name order. */
  valid: LaneGroup[];
  /** The others, in name order, each with why. */
  rejected: RejectedGroup[];
}

/**
 * The LaneGroup objects that make up the RuleSet. Each object is parsed on its own (invalid ones
 * are left out); the rest are taken oldest first (creationTimestamp, then name), each checked
 * against the groups already taken with the cross-group rules REST applies, so of two groups
 * claiming one service (or host, or edge path) the older one stays and the newer is left out.
 * Objects being deleted (deletionTimestamp set) are still selected: the filters keep them until
 * they are gone. Pure: no clock, no I/O.
 */
export function selectLaneGroups(objects: readonly KubeObject[], opts: ParseOptions = {}): GroupSelection {
  const age = (o: KubeObject) => o.metadata?.creationTimestamp ?? "";
  const ordered = [...objects].sort((a, b) => {
    const ta = Date.parse(age(a)), tb = Date.parse(age(b));
    const byTime = (Number.isNaN(ta) ? Infinity : ta) - (Number.isNaN(tb) ? Infinity : tb);
    if (byTime !== 0 && !Number.isNaN(byTime)) return byTime;
    return (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "");
  });
  const valid: LaneGroup[] = [];
  const rejected: RejectedGroup[] = [];
  const reject = (o: KubeObject, reason: RejectedGroup["reason"], errors: FieldError[]) =>
    rejected.push({ name: o.metadata?.name ?? "", reason, errors, message: describeErrors(errors) });
  for (const o of ordered) {
    const doc = modelDocument(o);
    if (!doc.ok) { reject(o, "Invalid", doc.errors); continue; }
    const parsed = parseLaneGroup(doc.document, opts);
    if (!parsed.ok) { reject(o, "Invalid", objectErrors(parsed.errors)); continue; }
    // The taken groups agree with each other, so every cross-group error is the newcomer's.
    const prefix = pointer([valid.length]);
    const cross = validateLaneGroups([...valid, parsed.value])
      .filter((e) => e.path === prefix || e.path.startsWith(prefix + "/"))
      .map((e) => ({ path: e.path.slice(prefix.length), message: e.message }));
    if (cross.length) { reject(o, "Conflict", objectErrors(cross)); continue; }
    valid.push(parsed.value);
  }
  const byName = <T>(f: (x: T) => string) => (a: T, b: T) => f(a).localeCompare(f(b));
  return { valid: valid.sort(byName((g) => g.name)), rejected: rejected.sort(byName((r) => r.name)) };
}
