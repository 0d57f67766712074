// The Store contract: lane groups plus an immutable, append-only revision log. The API and the CLI
// only talk to this interface, so SQLite (embedded default) and a future etcd store are swappable.
import type { RuleSource } from "../contracts.js";
import type { FieldError } from "../model/errors.js";
import type { LaneGroup } from "../model/lanegroup.js";
import type { PatchOp } from "./diff.js";

/**
 * `discover`: the mesh controller found workloads that change a group's lanes (autoLanes); the spec
 * is unchanged (so is the group's ETag), the diff is the change of the lanes the filters get.
 */
export type RevisionOp = "create" | "replace" | "delete" | "rollback" | "discover";

/** A lane group as stored: its normalized content and the revision that last wrote it (its ETag). */
export interface StoredGroup {
  name: string;
  revision: number;
  lanegroup: LaneGroup;
}

/** What one revision did to one group. `patch` is RFC 6902 relative to the group document. */
export interface GroupChange {
  group: string;
  action: "create" | "replace" | "delete";
  patch: PatchOp[];
}

export interface RevisionSummary {
  revision: number;
  /** ISO 8601, UTC. */
  time: string;
  actor: string;
  op: RevisionOp;
  /** The group a create/replace/delete named; null for a rollback (which may touch several). */
  group: string | null;
  /** For a rollback: the revision whose content it restored. */
  target?: number;
  /** Names of the groups whose content changed. */
  groups: string[];
}

export interface Revision extends RevisionSummary {
  diff: GroupChange[];
  /** Every lane group as it was right after this revision (sorted by name). */
  lanegroups: LaneGroup[];
}

/**
 * Precondition on a group: a number is the ETag the caller last saw (0 = "must not exist"),
 * "*" means "must exist" (HTTP If-Match: *).
 */
export type Expected = number | "*";

export interface WriteOptions {
  actor: string;
  expectedRevision?: Expected;
}

export interface PutResult {
  revision: number;
  created: boolean;
  group: StoredGroup;
}

export interface ListRevisionsOptions {
  /** Only revisions before this one (paging, newest first). */
  before?: number;
  limit?: number;
  /** Only revisions that changed this group. */
  group?: string;
}

/** SQLite answers at once; a networked store (etcd) answers later. Callers always await. */
export type Awaitable<T> = T | Promise<T>;

/**
 * Reads are synchronous (a networked store serves them from a local copy kept current by a watch);
 * a write resolves once it is committed and visible to this process's reads.
 */
export interface Store extends RuleSource {
  list(): StoredGroup[];
  get(name: string): StoredGroup | undefined;
  /** Checks a group (alone and against the other stored groups) without writing anything. */
  validate(input: unknown): { ok: true; value: LaneGroup } | { ok: false; errors: FieldError[] };
  /** Creates or replaces the group named by `input.name`. */
  put(input: unknown, opts: WriteOptions): Awaitable<PutResult>;
  delete(name: string, opts: WriteOptions): Awaitable<{ revision: number }>;
  /** Writes a new revision whose content equals revision `target`'s. */
  rollback(target: number, opts: { actor: string }): Awaitable<{ revision: number; groups: string[] }>;
  /**
   * Records a `discover` revision of `group` (the Kubernetes store, where the mesh controller runs):
   * `patch` is the change of its lanes as the filters get them; its content and ETag stay.
   */
  recordDiscovery?(group: string, patch: PatchOp[], actor: string): Promise<number | undefined>;
  revisions(opts?: ListRevisionsOptions): RevisionSummary[];
  revision(n: number): Revision | undefined;
  /** Cheap liveness check of the backing storage (for /readyz). */
  ping(): Awaitable<boolean>;
  close(): Awaitable<void>;
}

/** Base of the errors the store throws; the API maps `status` to the HTTP status. */
export class StoreError extends Error {
  constructor(
    readonly status: number,
    readonly errors: FieldError[],
  ) {
    super(errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; "));
    this.name = new.target.name;
  }
}

/** Input refused by validation; nothing was written. */
export class ValidationError extends StoreError {
  constructor(errors: FieldError[]) {
    super(400, errors);
  }
}

export class NotFoundError extends StoreError {
  constructor(message: string, path = "") {
    super(404, [{ path, message }]);
  }
}

/** The precondition (If-Match) failed: someone else changed the group first. */
export class ConflictError extends StoreError {
  constructor(
    readonly expected: Expected,
    readonly actual: number,
    name: string,
  ) {
    const saw = actual === 0 ? "does not exist" : `is at revision ${actual}`;
    const want = expected === "*" ? "it to exist" : expected === 0 ? "it not to exist" : expected < 0 ? "an ETag (a revision number)" : `revision ${expected}`;
    super(412, [{ path: "", message: `lane group ${name} ${saw}, expected ${want}` }]);
  }
}
