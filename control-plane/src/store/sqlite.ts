// The embedded default store: one SQLite file (better-sqlite3, WAL).
//
// Tables:
//   revisions  one row per committed change: n, ISO time, actor, op, group, rollback target, diff
//   history    per-group content written by each revision (body NULL = deleted); the state at any
//              revision n is, per group, its latest history row with revision <= n. Storing only
//              what changed keeps the log O(changes), not O(revisions x groups).
//   lanegroups the current groups with the revision that last wrote each (its ETag): a
//              materialized view of history, so reads never replay the log.
//
// Every write is one IMMEDIATE transaction (so read-validate-write is serialized even across
// processes sharing the file); listeners run only after it commits.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { storedLaneGroup, type LaneGroup } from "../model/lanegroup.js";
import { checkExpected, putChange, rollbackPlan, validateAmong, type Validation } from "./checks.js";
import {
  ConflictError, NotFoundError,
  type GroupChange, type ListRevisionsOptions, type PutResult, type Revision, type RevisionOp,
  type RevisionSummary, type Store, type StoredGroup, type WriteOptions,
} from "./types.js";

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
  n      INTEGER PRIMARY KEY,
  time   TEXT NOT NULL,
  actor  TEXT NOT NULL,
  op     TEXT NOT NULL CHECK (op IN ('create', 'replace', 'delete', 'rollback')),
  grp    TEXT,
  target INTEGER,
  diff   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
  revision INTEGER NOT NULL REFERENCES revisions (n),
  name     TEXT NOT NULL,
  body     TEXT,
  PRIMARY KEY (name, revision)
);
CREATE INDEX IF NOT EXISTS history_by_revision ON history (revision);
CREATE TABLE IF NOT EXISTS lanegroups (
  name     TEXT PRIMARY KEY,
  revision INTEGER NOT NULL REFERENCES revisions (n),
  body     TEXT NOT NULL
);
`;

interface GroupRow { name: string; revision: number; body: string }
interface RevisionRow { n: number; time: string; actor: string; op: RevisionOp; grp: string | null; target: number | null; diff: string }

export interface SqliteStoreOptions {
  /** Clock for revision times (tests). */
  now?: () => Date;
}

export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly listeners = new Set<(revision: number) => void>();
  private readonly now: () => Date;

  /** The database, for parts that keep their own tables beside the store's (traffic rollups). */
  get database(): Database.Database {
    return this.db;
  }

  /** `path` is a file (its directory is created) or ":memory:". */
  constructor(path: string, opts: SqliteStoreOptions = {}) {
    this.path = path;
    this.now = opts.now ?? (() => new Date());
    if (path !== ":memory:" && path !== "") mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("foreign_keys = ON");
    this.db.pragma("busy_timeout = 5000"); // another process holding the write lock: wait, don't fail
    this.db.exec(SCHEMA);
    const v = this.db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
    if (v === undefined) this.db.prepare("INSERT INTO meta (key, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
    else if (Number(v.value) !== SCHEMA_VERSION) throw new Error(`${path}: store schema ${v.value}, this control plane reads ${SCHEMA_VERSION}`);
  }

  // ---- RuleSource ----

  current(): { revision: number; groups: LaneGroup[] } {
    // One read transaction, so the revision and the groups agree even with another writer.
    return this.db.transaction(() => ({ revision: this.latest(), groups: this.list().map((g) => g.lanegroup) }))();
  }

  onChange(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  // ---- reads ----

  list(): StoredGroup[] {
    const rows = this.db.prepare("SELECT name, revision, body FROM lanegroups ORDER BY name").all() as GroupRow[];
    return rows.map(toStored);
  }

  get(name: string): StoredGroup | undefined {
    const row = this.db.prepare("SELECT name, revision, body FROM lanegroups WHERE name = ?").get(name) as GroupRow | undefined;
    return row && toStored(row);
  }

  revisions(opts: ListRevisionsOptions = {}): RevisionSummary[] {
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 1000));
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.before !== undefined) { where.push("n < ?"); args.push(opts.before); }
    if (opts.group !== undefined) { where.push("EXISTS (SELECT 1 FROM history h WHERE h.revision = n AND h.name = ?)"); args.push(opts.group); }
    const sql = `SELECT * FROM revisions ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY n DESC LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, limit) as RevisionRow[];
    return rows.map((r) => summary(r, JSON.parse(r.diff) as GroupChange[]));
  }

  revision(n: number): Revision | undefined {
    return this.db.transaction(() => {
      const row = this.db.prepare("SELECT * FROM revisions WHERE n = ?").get(n) as RevisionRow | undefined;
      if (!row) return undefined;
      const changes = JSON.parse(row.diff) as GroupChange[];
      return { ...summary(row, changes), diff: changes, lanegroups: this.stateAt(n).map((g) => g.lanegroup) };
    })();
  }

  ping(): boolean {
    try {
      return this.db.open && (this.db.prepare("SELECT 1 AS ok").get() as { ok: number }).ok === 1;
    } catch {
      return false;
    }
  }

  // ---- writes ----

  validate(input: unknown): Validation {
    return validateAmong(this.list(), input);
  }

  put(input: unknown, opts: WriteOptions): PutResult {
    const result = this.write(() => {
      const { group, created, change } = putChange(this.list(), input, opts.expectedRevision);
      const n = this.append(opts.actor, change.action, group.name, undefined, [change]);
      this.setGroup(n, group.name, group);
      return { revision: n, created, group: { name: group.name, revision: n, lanegroup: group } };
    });
    return result;
  }

  delete(name: string, opts: WriteOptions): { revision: number } {
    return this.write(() => {
      const before = this.get(name);
      if (!before) {
        if (opts.expectedRevision !== undefined && opts.expectedRevision !== 0) throw new ConflictError(opts.expectedRevision, 0, name);
        throw new NotFoundError(`lane group ${name} does not exist`);
      }
      checkExpected(name, before.revision, opts.expectedRevision);
      const n = this.append(opts.actor, "delete", name, undefined, [{ group: name, action: "delete", patch: [{ op: "remove", path: "", old: before.lanegroup }] }]);
      this.setGroup(n, name, undefined);
      return { revision: n };
    });
  }

  rollback(target: number, opts: { actor: string }): { revision: number; groups: string[] } {
    return this.write(() => {
      if (!Number.isInteger(target) || this.db.prepare("SELECT 1 FROM revisions WHERE n = ?").get(target) === undefined) {
        throw new NotFoundError(`revision ${target} does not exist`, "/revision");
      }
      const { wanted, changes } = rollbackPlan(this.list(), this.stateAt(target));
      const n = this.append(opts.actor, "rollback", null, target, changes);
      // Only the groups whose content changes get the new revision as ETag; the others keep theirs.
      for (const c of changes) this.setGroup(n, c.group, wanted.get(c.group));
      return { revision: n, groups: changes.map((c) => c.group) };
    });
  }

  close(): void {
    this.listeners.clear();
    if (this.db.open) this.db.close();
  }

  // ---- internals ----

  private latest(): number {
    return (this.db.prepare("SELECT COALESCE(MAX(n), 0) AS n FROM revisions").get() as { n: number }).n;
  }

  /** Runs `fn` in one IMMEDIATE transaction, then tells the listeners (after the commit). */
  private write<T extends { revision: number }>(fn: () => T): T {
    const result = this.db.transaction(fn).immediate();
    for (const l of [...this.listeners]) {
      try { l(result.revision); } catch (e) { console.error("store listener failed:", e); }
    }
    return result;
  }

  private append(actor: string, op: RevisionOp, group: string | null, target: number | undefined, changes: GroupChange[]): number {
    const n = this.latest() + 1;
    this.db.prepare("INSERT INTO revisions (n, time, actor, op, grp, target, diff) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(n, this.now().toISOString(), actor, op, group, target ?? null, JSON.stringify(changes));
    return n;
  }

  private setGroup(n: number, name: string, group: LaneGroup | undefined): void {
    const body = group === undefined ? null : JSON.stringify(group);
    this.db.prepare("INSERT INTO history (revision, name, body) VALUES (?, ?, ?)").run(n, name, body);
    if (body === null) this.db.prepare("DELETE FROM lanegroups WHERE name = ?").run(name);
    else this.db.prepare("INSERT INTO lanegroups (name, revision, body) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET revision = excluded.revision, body = excluded.body").run(name, n, body);
  }

  /** Every group as it was right after revision n, each with the revision that last wrote it. */
  private stateAt(n: number): StoredGroup[] {
    const rows = this.db.prepare(`
      SELECT h.name, h.revision, h.body FROM history h
      WHERE h.revision = (SELECT MAX(revision) FROM history WHERE name = h.name AND revision <= ?)
        AND h.body IS NOT NULL
      ORDER BY h.name`).all(n) as GroupRow[];
    return rows.map(toStored);
  }
}

function toStored(row: GroupRow): StoredGroup {
  return { name: row.name, revision: row.revision, lanegroup: storedLaneGroup(JSON.parse(row.body) as LaneGroup) };
}

function summary(r: RevisionRow, changes: GroupChange[]): RevisionSummary {
  const s: RevisionSummary = { revision: r.n, time: r.time, actor: r.actor, op: r.op, group: r.grp, groups: changes.map((c) => c.group) };
  if (r.target !== null) s.target = r.target;
  return s;
}
