// Where releases live: beside the lane groups in the store's SQLite file, one row per release, each
// save one transaction. The engine is the only writer.
import type { Database } from "better-sqlite3";
import type { Release, ReleaseStatus } from "./state.js";

export interface ReleaseStore {
  get(name: string): Release | undefined;
  /** Newest first. */
  list(filter?: { group?: string; status?: ReleaseStatus[] }): Release[];
  /** Inserts or replaces. */
  save(r: Release): void | Promise<void>;
  /** Called after any release changed, here or (a shared store) on another replica. */
  onChange?(listener: () => void): () => void;
}

/** A ReleaseStore's list over releases it holds in memory: the filter, newest first (then by name), copies. */
export function selectReleases(all: Iterable<Release>, filter: { group?: string; status?: ReleaseStatus[] } = {}): Release[] {
  return [...all]
    .filter((r) => (filter.group === undefined || r.group === filter.group) && (filter.status === undefined || filter.status.includes(r.status)))
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.name < b.name ? -1 : 1))
    .map((r) => structuredClone(r));
}

export class SqliteReleaseStore implements ReleaseStore {
  private readonly stmt;

  constructor(db: Database) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS releases (
        name       TEXT PRIMARY KEY,
        grp        TEXT NOT NULL,
        lane       TEXT NOT NULL,
        status     TEXT NOT NULL,
        created_at TEXT NOT NULL,
        body       TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS releases_by_group ON releases (grp, created_at);
    `);
    this.stmt = {
      get: db.prepare<[string], { body: string }>("SELECT body FROM releases WHERE name = ?"),
      all: db.prepare<[], { body: string }>("SELECT body FROM releases ORDER BY created_at DESC, name"),
      // The engine's tick asks for the running ones several times a second: filter in SQL.
      byStatus: db.prepare<[string], { body: string }>("SELECT body FROM releases WHERE status IN (SELECT value FROM json_each(?)) ORDER BY created_at DESC, name"),
      save: db.prepare("INSERT INTO releases (name, grp, lane, status, created_at, body) VALUES (?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT (name) DO UPDATE SET status = excluded.status, body = excluded.body"),
    };
  }

  get(name: string): Release | undefined {
    const row = this.stmt.get.get(name);
    return row && (JSON.parse(row.body) as Release);
  }

  list(filter: { group?: string; status?: ReleaseStatus[] } = {}): Release[] {
    const rows = filter.status ? this.stmt.byStatus.all(JSON.stringify(filter.status)) : this.stmt.all.all();
    return rows.map((r) => JSON.parse(r.body) as Release).filter((r) => filter.group === undefined || r.group === filter.group);
  }

  save(r: Release): void {
    this.stmt.save.run(r.name, r.group, r.lane, r.status, r.createdAt, JSON.stringify(r));
  }
}
