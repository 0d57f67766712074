// The SQLite store on real files: revisions, ETags, preconditions, validation before writing,
// rollback, the audit trail, and a reopened file serving exactly the same state.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConflictError, diff, NotFoundError, openStore, SqliteStore, ValidationError, type PatchOp,
} from "../../control-plane/src/store/index.js";
import Database from "better-sqlite3";
import { mockGroup } from "../support/filter.js";

let dir: string;
let file: string;
const open: SqliteStore[] = [];
let tick = 0;
const clock = () => new Date(Date.UTC(2025, 0, 1, 12, 0, tick++));

function store(path = file): SqliteStore {
  const s = new SqliteStore(path, { now: clock });
  open.push(s);
  return s;
}

const other = (extra: Record<string, unknown> = {}) => ({ name: "shop", services: [{ name: "web" }, { name: "api" }], ...extra });
const alice = { actor: "alice" };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "graylane-store-"));
  file = join(dir, "nested", "graylane.db");
  tick = 0;
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Applies RFC 6902 ops (add/remove/replace only) to a copy of `doc`. */
function applyPatch(doc: unknown, ops: PatchOp[]): unknown {
  let root = structuredClone(doc);
  for (const op of ops) {
    const keys = op.path.split("/").slice(1).map((k) => k.replace(/~1/g, "/").replace(/~0/g, "~"));
    if (!keys.length) { root = op.op === "remove" ? undefined : structuredClone(op.value); continue; }
    const parent = keys.slice(0, -1).reduce((o: any, k) => o[k], root) as any;
    const last = keys.at(-1)!;
    if (Array.isArray(parent)) {
      const i = Number(last);
      if (op.op === "add") parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === "remove") parent.splice(i, 1);
      else parent[i] = structuredClone(op.value);
    } else if (op.op === "remove") delete parent[last];
    else parent[last] = structuredClone(op.value);
  }
  return root;
}

describe("SqliteStore", () => {
  it("a lane group stored before generateTraceId existed reads back with its default, true, the same as written now", () => {
    const s = store();
    const put = s.put(mockGroup(), alice);
    expect(put.group.lanegroup.generateTraceId).toBe(true);
    s.close();
    open.pop();
    // The rows as a control plane before this change wrote them: the field absent from the JSON.
    const db = new Database(file);
    for (const table of ["lanegroups", "history"]) {
      const rows = db.prepare(`SELECT rowid, body FROM ${table} WHERE body IS NOT NULL`).all() as Array<{ rowid: number; body: string }>;
      for (const r of rows) {
        const { generateTraceId, ...old } = JSON.parse(r.body);
        expect(generateTraceId).toBe(true);
        db.prepare(`UPDATE ${table} SET body = ? WHERE rowid = ?`).run(JSON.stringify(old), r.rowid);
      }
    }
    expect(JSON.parse((db.prepare("SELECT body FROM lanegroups").get() as { body: string }).body)).not.toHaveProperty("generateTraceId");
    db.close();
    const again = store();
    expect(again.get("mock")!.lanegroup.generateTraceId).toBe(true);
    expect(again.current().groups[0].generateTraceId).toBe(true);
    expect(again.get("mock")!.revision).toBe(put.revision);
    expect(diff(again.get("mock")!.lanegroup, put.group.lanegroup)).toEqual([]); // a re-put changes nothing
    expect(again.revision(put.revision)!.lanegroups[0].generateTraceId).toBe(true);
  });

  it("a lane group stored before isolation existed reads back permissive, the same as written now", () => {
    const s = store();
    const put = s.put(mockGroup(), alice);
    expect(put.group.lanegroup.isolation).toBe("permissive");
    s.close();
    open.pop();
    const db = new Database(file);
    for (const table of ["lanegroups", "history"]) {
      const rows = db.prepare(`SELECT rowid, body FROM ${table} WHERE body IS NOT NULL`).all() as Array<{ rowid: number; body: string }>;
      for (const r of rows) {
        const { isolation, ...old } = JSON.parse(r.body);
        expect(isolation).toBe("permissive");
        db.prepare(`UPDATE ${table} SET body = ? WHERE rowid = ?`).run(JSON.stringify(old), r.rowid);
      }
    }
    db.close();
    const again = store();
    expect(again.get("mock")!.lanegroup.isolation).toBe("permissive");
    expect(again.current().groups[0].isolation).toBe("permissive");
    expect(diff(again.get("mock")!.lanegroup, put.group.lanegroup)).toEqual([]);
    expect(again.revision(put.revision)!.lanegroups[0].isolation).toBe("permissive");
  });

  it("creates the file's directory, uses WAL, and starts empty at revision 0", () => {
    const s = store();
    expect(existsSync(file)).toBe(true);
    expect(s.current()).toEqual({ revision: 0, groups: [] });
    expect(s.revisions()).toEqual([]);
    expect(s.ping()).toBe(true);
    const raw = (s as unknown as { db: { pragma(q: string, o: object): unknown } }).db.pragma("journal_mode", { simple: true });
    expect(raw).toBe("wal");
  });

  it("create then replace: one revision each, the ETag is the revision that last wrote the group", () => {
    const s = store();
    const a = s.put(mockGroup(), alice);
    expect(a).toMatchObject({ revision: 1, created: true, group: { name: "mock", revision: 1 } });
    expect(a.group.lanegroup.laneHeader).toBe("x-graylane-lane"); // stored normalized, defaults filled
    const b = s.put(other(), alice);
    expect(b.revision).toBe(2);
    const c = s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 10 }] }), alice);
    expect(c).toMatchObject({ revision: 3, created: false });
    expect(s.get("mock")?.revision).toBe(3);
    expect(s.get("shop")?.revision).toBe(2);
    expect(s.current().revision).toBe(3);
    expect(s.current().groups.map((g) => g.name)).toEqual(["mock", "shop"]);
    expect(s.list().map((g) => [g.name, g.revision])).toEqual([["mock", 3], ["shop", 2]]);
  });

  it("refused input writes nothing: alone, and against the other stored groups", () => {
    const s = store();
    s.put(mockGroup(), alice);
    const before = JSON.stringify([s.list(), s.revisions()]);
    expect(() => s.put(mockGroup({ lanes: [{ name: "c", weight: 101 }] }), alice)).toThrow(ValidationError);
    try {
      s.put(other({ services: [{ name: "mockb" }] }), alice);
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).errors).toContainEqual({ path: "/services/0/name", message: "service mockb already belongs to lane group mock" });
    }
    try {
      s.put(other({ services: [{ name: "web", hosts: ["MOCKA.default.svc.cluster.local"] }] }), alice);
      throw new Error("accepted");
    } catch (e) {
      expect((e as ValidationError).errors[0].path).toBe("/services/0/hosts/0");
    }
    expect(JSON.stringify([s.list(), s.revisions()])).toBe(before);
    // replacing a group is checked against the others only, not against its own old version
    expect(s.put(mockGroup({ traceHeader: "x-request-id" }), alice).revision).toBe(2);
  });

  it("optimistic concurrency: the expected revision must be the group's ETag", () => {
    const s = store();
    s.put(mockGroup(), alice); // 1
    s.put(other(), alice); // 2: does not move mock's ETag
    expect(s.put(mockGroup({ traceHeader: "a" }), { actor: "a", expectedRevision: 1 }).revision).toBe(3);
    const stale = () => s.put(mockGroup({ traceHeader: "b" }), { actor: "b", expectedRevision: 1 });
    expect(stale).toThrow(ConflictError);
    expect(stale).toThrow(/is at revision 3, expected revision 1/);
    expect(() => s.put(mockGroup(), { actor: "b", expectedRevision: 0 })).toThrow(/expected it not to exist/); // create-only
    expect(() => s.put({ ...other(), name: "new" , services: [{ name: "n" }] }, { actor: "b", expectedRevision: "*" })).toThrow(/does not exist, expected it to exist/);
    expect(s.put({ name: "new", services: [{ name: "n" }] }, { actor: "b", expectedRevision: 0 }).created).toBe(true);
    expect(() => s.delete("mock", { actor: "b", expectedRevision: 2 })).toThrow(ConflictError);
    expect(s.get("mock")?.revision).toBe(3);
    expect(s.delete("mock", { actor: "b", expectedRevision: 3 }).revision).toBe(5);
    expect(() => s.delete("mock", alice)).toThrow(NotFoundError);
    expect(s.current().revision).toBe(5);
  });

  it("onChange fires after the commit, with the new revision visible", () => {
    const s = store();
    const seen: Array<[number, number, string[]]> = [];
    const off = s.onChange((n) => seen.push([n, s.current().revision, s.current().groups.map((g) => g.name)]));
    s.put(mockGroup(), alice);
    expect(() => s.put(mockGroup({ name: "Bad" }), alice)).toThrow(); // refused: no event
    s.delete("mock", alice);
    off();
    s.put(other(), alice);
    expect(seen).toEqual([[1, 1, ["mock"]], [2, 2, []]]);
  });

  it("a listener that throws does not undo or fail the write", () => {
    const s = store();
    const err = console.error;
    console.error = () => {};
    try {
      s.onChange(() => { throw new Error("boom"); });
      expect(s.put(mockGroup(), alice).revision).toBe(1);
    } finally { console.error = err; }
    expect(s.get("mock")).toBeDefined();
  });

  it("audit trail: actor, ISO time, op, group and an RFC 6902 diff that rebuilds the new content", () => {
    const s = store();
    s.put(mockGroup(), { actor: "alice" });
    const v1 = s.get("mock")!.lanegroup;
    s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 12.5 }, { name: "dev" }] }), { actor: "bob" });
    const v2 = s.get("mock")!.lanegroup;
    s.delete("mock", { actor: "carol" });

    const log = s.revisions();
    expect(log.map((r) => [r.revision, r.actor, r.op, r.group, r.groups])).toEqual([
      [3, "carol", "delete", "mock", ["mock"]],
      [2, "bob", "replace", "mock", ["mock"]],
      [1, "alice", "create", "mock", ["mock"]],
    ]);
    expect(log.map((r) => r.time)).toEqual(["2025-01-01T12:00:02.000Z", "2025-01-01T12:00:01.000Z", "2025-01-01T12:00:00.000Z"]);

    const r1 = s.revision(1)!;
    expect(r1.diff).toEqual([{ group: "mock", action: "create", patch: [{ op: "add", path: "", value: v1 }] }]);
    expect(r1.lanegroups).toEqual([v1]);
    const r2 = s.revision(2)!;
    expect(r2.diff[0].action).toBe("replace");
    expect(r2.diff[0].patch).toContainEqual({ op: "replace", path: "/lanes/0/weight", value: 12.5, old: 0 });
    expect(r2.diff[0].patch).toContainEqual(expect.objectContaining({ op: "remove", path: "/lanes/0/match/0" }));
    expect(r2.diff[0].patch).toContainEqual(expect.objectContaining({ op: "add", path: "/lanes/1" }));
    expect(applyPatch(v1, r2.diff[0].patch)).toEqual(v2);
    const r3 = s.revision(3)!;
    expect(r3.diff).toEqual([{ group: "mock", action: "delete", patch: [{ op: "remove", path: "", old: v2 }] }]);
    expect(r3.lanegroups).toEqual([]);
    expect(s.revision(4)).toBeUndefined();
    // paging and filtering
    expect(s.revisions({ limit: 1, before: 3 }).map((r) => r.revision)).toEqual([2]);
    s.put(other(), alice);
    expect(s.revisions({ group: "shop" }).map((r) => r.revision)).toEqual([4]);
  });

  it("rollback writes a new revision whose content equals revision n's; unchanged groups keep their ETag", () => {
    const s = store();
    s.put(mockGroup(), alice); // 1
    s.put(other(), alice); // 2
    s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 50 }] }), alice); // 3
    s.delete("shop", alice); // 4
    s.put({ name: "late", services: [{ name: "z" }] }, alice); // 5
    const at2 = s.revision(2)!.lanegroups;

    const r = s.rollback(2, { actor: "ops" });
    expect(r).toEqual({ revision: 6, groups: ["late", "mock", "shop"] });
    expect(s.current()).toEqual({ revision: 6, groups: at2 });
    expect(s.revision(6)).toMatchObject({ op: "rollback", actor: "ops", target: 2, group: null, groups: ["late", "mock", "shop"], lanegroups: at2 });
    expect(s.revision(6)!.diff.map((c) => [c.group, c.action])).toEqual([["late", "delete"], ["mock", "replace"], ["shop", "create"]]);
    expect(s.get("mock")?.revision).toBe(6);

    // rolling back to what is already there: a new revision, no group changes, ETags kept
    s.put({ name: "late", services: [{ name: "z" }] }, alice); // 7
    const r2 = s.rollback(7, { actor: "ops" });
    expect(r2).toEqual({ revision: 8, groups: [] });
    expect(s.get("late")?.revision).toBe(7);
    expect(s.get("mock")?.revision).toBe(6);

    expect(() => s.rollback(99, alice)).toThrow(NotFoundError);
    expect(() => s.rollback(0, alice)).toThrow(/revision 0 does not exist/);
    expect(s.current().revision).toBe(8);
  });

  it("a reopened file serves exactly the same groups, ETags and revisions", () => {
    const s = store();
    s.put(mockGroup(), { actor: "alice" });
    s.put(other(), { actor: "bob" });
    s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 5 }] }), alice);
    s.rollback(1, { actor: "carol" });
    const snapshot = () => JSON.stringify({
      current: s2.current(), list: s2.list(), revisions: s2.revisions(),
      detail: [1, 2, 3, 4].map((n) => s2.revision(n)),
    });
    let s2 = s;
    const before = snapshot();
    s.close();
    s2 = store();
    expect(snapshot()).toBe(before);
    expect(s2.put(mockGroup(), { actor: "x", expectedRevision: 4 }).revision).toBe(5);
  });

  it("two handles on one file: the second sees the first's commits and keeps numbering", () => {
    const a = store();
    const b = store();
    a.put(mockGroup(), alice);
    expect(b.get("mock")?.revision).toBe(1);
    expect(b.put(other(), alice).revision).toBe(2);
    expect(() => a.put(mockGroup(), { actor: "x", expectedRevision: 0 })).toThrow(ConflictError);
  });

  it("openStore specs", async () => {
    const m = await openStore(":memory:");
    open.push(m as SqliteStore);
    expect((await m.put(mockGroup(), alice)).revision).toBe(1);
    const f = await openStore(`sqlite:${join(dir, "x.db")}`);
    open.push(f as SqliteStore);
    expect(existsSync(join(dir, "x.db"))).toBe(true);
    await expect(openStore("consul://127.0.0.1:8500")).rejects.toThrow(/unsupported store/);
    await expect(openStore("sqlite:")).rejects.toThrow(/missing file path/);
    await expect(openStore("etcd://127.0.0.1:1")).rejects.toThrow(/cannot reach etcd/);
  });
});

describe("diff", () => {
  it("gives add/remove/replace ops that rebuild the target", () => {
    const a = { x: 1, list: [1, 2, 3], o: { k: "v", gone: true }, "a/b": 1 };
    const b = { x: 2, list: [1, 9], o: { k: "v", added: [1] }, "a/b": 2 };
    const ops = diff(a, b);
    expect(ops).toEqual([
      { op: "replace", path: "/x", value: 2, old: 1 },
      { op: "replace", path: "/list/1", value: 9, old: 2 },
      { op: "remove", path: "/list/2", old: 3 },
      { op: "remove", path: "/o/gone", old: true },
      { op: "add", path: "/o/added", value: [1] },
      { op: "replace", path: "/a~1b", value: 2, old: 1 },
    ]);
    expect(applyPatch(a, ops)).toEqual(b);
    expect(diff(a, structuredClone(a))).toEqual([]);
    const grow = diff([1], [1, 2, 3]);
    expect(applyPatch([1], grow)).toEqual([1, 2, 3]);
    const shrink = diff([1, 2, 3, 4], [1]);
    expect(shrink.map((o) => o.path)).toEqual(["/3", "/2", "/1"]);
    expect(applyPatch([1, 2, 3, 4], shrink)).toEqual([1]);
  });
});
