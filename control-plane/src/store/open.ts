// `--store` specs → a Store. One place to add etcd:// later (DESIGN.md: several replicas).
import { SqliteStore } from "./sqlite.js";
import type { Store } from "./types.js";

export const DEFAULT_STORE = "sqlite:.data/graylane.db";

/** "sqlite:PATH", "sqlite::memory:" or ":memory:"; a bare path is taken as a SQLite file. */
export function openStore(spec: string = DEFAULT_STORE): Store {
  if (spec === ":memory:") return new SqliteStore(":memory:");
  if (spec.startsWith("sqlite:")) {
    const path = spec.slice("sqlite:".length);
    if (!path) throw new Error(`--store ${spec}: missing file path (sqlite:PATH)`);
    return new SqliteStore(path);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) throw new Error(`--store ${spec}: unsupported store (supported: sqlite:PATH, :memory:)`);
  return new SqliteStore(spec);
}
