// The Store contract as one suite every implementation runs (SQLite in
// test/integration/store-conformance.test.ts, Kubernetes in test/e2e/kube-store.test.ts):
// revisions, ETags, If-Match, validation before writing, onChange after the commit, the audit trail
// with its RFC 6902 diff, rollback, a reopened store serving the same state, and two stores on one
// backing store serializing concurrent writes. Stores answer synchronously or not: every call is
// awaited, and a synchronous throw counts as a rejection.
import { afterAll, describe, expect, it } from "vitest";
import { ConflictError, NotFoundError, ValidationError, type Store } from "../../control-plane/src/store/index.js";
import { mockGroup } from "./filter.js";
import { until } from "./wait.js";

export interface ConformanceEnv {
  /** Empties the backing storage: the next store opened starts at revision 0. */
  reset(): Promise<void>;
  /** A store on the backing storage, with this clock for revision times. */
  open(opts: { now: () => Date }): Promise<Store>;
  /** The group names the backing storage holds, read past the store (e.g. LaneGroup objects). */
  objects?: () => Promise<string[]>;
}

const attempt = <T>(f: () => T | Promise<T>): Promise<T> => Promise.resolve().then(f);


export function storeConformance(label: string, env: ConformanceEnv): void {
  let tick = 0;
  const clock = () => new Date(Date.UTC(2025, 0, 1, 12, 0, tick++));
  const opened: Store[] = [];
  const open = async () => { const s = await env.open({ now: clock }); opened.push(s); return s; };
  const alice = { actor: "alice" };
  const other = (extra: Record<string, unknown> = {}) => ({ name: "shop", services: [{ name: "web" }, { name: "api" }], ...extra });
  const closeAll = async () => { for (const s of opened.splice(0)) await s.close(); };
  const baseReset = env.reset;
  env = { ...env, reset: async () => { await closeAll(); await baseReset(); } };

  describe(`${label}: the Store contract`, () => {
    afterAll(closeAll);

    it("starts empty at revision 0 and answers ping", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      expect(s.current()).toEqual({ revision: 0, groups: [] });
      expect(s.revisions()).toEqual([]);
      expect(await s.ping()).toBe(true);
    });

    it("create then replace: one revision each, the ETag is the revision that last wrote the group", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      const a = await s.put(mockGroup(), alice);
      expect(a).toMatchObject({ revision: 1, created: true, group: { name: "mock", revision: 1 } });
      expect(a.group.lanegroup.laneHeader).toBe("x-graylane-lane");
      expect((await s.put(other(), alice)).revision).toBe(2);
      const c = await s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 10 }] }), alice);
      expect(c).toMatchObject({ revision: 3, created: false });
      expect(s.list().map((g) => [g.name, g.revision])).toEqual([["mock", 3], ["shop", 2]]);
      expect(s.current().revision).toBe(3);
    });

    it("refused input writes nothing: alone, and against the other stored groups", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      await s.put(mockGroup(), alice);
      const before = JSON.stringify([s.list(), s.revisions()]);
      await expect(attempt(() => s.put(mockGroup({ lanes: [{ name: "c", weight: 101 }] }), alice))).rejects.toThrow(ValidationError);
      const clash = await attempt(() => s.put(other({ services: [{ name: "mockb" }] }), alice)).catch((e) => e);
      expect(clash).toBeInstanceOf(ValidationError);
      expect(clash.errors).toContainEqual({ path: "/services/0/name", message: "service mockb already belongs to lane group mock" });
      expect(JSON.stringify([s.list(), s.revisions()])).toBe(before);
      if (env.objects) expect(await env.objects()).toEqual(["mock"]);
      expect((await s.put(mockGroup({ traceHeader: "x-request-id" }), alice)).revision).toBe(2);
    });

    it("optimistic concurrency: the expected revision must be the group's ETag", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      await s.put(mockGroup(), alice); // 1
      await s.put(other(), alice); // 2
      expect((await s.put(mockGroup({ traceHeader: "a" }), { actor: "a", expectedRevision: 1 })).revision).toBe(3);
      await expect(attempt(() => s.put(mockGroup({ traceHeader: "b" }), { actor: "b", expectedRevision: 1 }))).rejects.toThrow(/is at revision 3, expected revision 1/);
      await expect(attempt(() => s.put(mockGroup(), { actor: "b", expectedRevision: 0 }))).rejects.toThrow(/expected it not to exist/);
      await expect(attempt(() => s.put({ name: "new", services: [{ name: "n" }] }, { actor: "b", expectedRevision: "*" }))).rejects.toThrow(/does not exist, expected it to exist/);
      expect((await s.put({ name: "new", services: [{ name: "n" }] }, { actor: "b", expectedRevision: 0 })).created).toBe(true);
      await expect(attempt(() => s.delete("mock", { actor: "b", expectedRevision: 2 }))).rejects.toThrow(ConflictError);
      expect((await s.delete("mock", { actor: "b", expectedRevision: 3 })).revision).toBe(5);
      await expect(attempt(() => s.delete("mock", alice))).rejects.toThrow(NotFoundError);
      expect(s.current().revision).toBe(5);
      if (env.objects) expect(await env.objects()).toEqual(["new", "shop"]);
    });

    it("onChange fires after the commit, with the new revision visible", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      const seen: Array<[number, number, string[]]> = [];
      const off = s.onChange((n) => seen.push([n, s.current().revision, s.current().groups.map((g) => g.name)]));
      await s.put(mockGroup(), alice);
      await expect(attempt(() => s.put(mockGroup({ name: "Bad" }), alice))).rejects.toThrow();
      await s.delete("mock", alice);
      off();
      await s.put(other(), alice);
      expect(seen).toEqual([[1, 1, ["mock"]], [2, 2, []]]);
    });

    it("audit trail: actor, time, op, group and an RFC 6902 diff that rebuilds the new content", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      await s.put(mockGroup(), { actor: "alice" });
      const v1 = s.get("mock")!.lanegroup;
      await s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 12.5 }, { name: "dev" }] }), { actor: "bob" });
      const v2 = s.get("mock")!.lanegroup;
      await s.delete("mock", { actor: "carol" });
      expect(s.revisions().map((r) => [r.revision, r.actor, r.op, r.group, r.groups])).toEqual([
        [3, "carol", "delete", "mock", ["mock"]],
        [2, "bob", "replace", "mock", ["mock"]],
        [1, "alice", "create", "mock", ["mock"]],
      ]);
      expect(s.revisions().map((r) => r.time)).toEqual(["2025-01-01T12:00:02.000Z", "2025-01-01T12:00:01.000Z", "2025-01-01T12:00:00.000Z"]);
      expect(s.revision(1)).toMatchObject({ diff: [{ group: "mock", action: "create", patch: [{ op: "add", path: "", value: v1 }] }], lanegroups: [v1] });
      expect(s.revision(2)!.diff[0].patch).toContainEqual({ op: "replace", path: "/lanes/0/weight", value: 12.5, old: 0 });
      expect(s.revision(2)!.lanegroups).toEqual([v2]);
      expect(s.revision(3)).toMatchObject({ diff: [{ group: "mock", action: "delete", patch: [{ op: "remove", path: "", old: v2 }] }], lanegroups: [] });
      expect(s.revision(4)).toBeUndefined();
      expect(s.revisions({ limit: 1, before: 3 }).map((r) => r.revision)).toEqual([2]);
      await s.put(other(), alice);
      expect(s.revisions({ group: "shop" }).map((r) => r.revision)).toEqual([4]);
    });

    it("rollback writes a new revision whose content equals revision n's; unchanged groups keep their ETag", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      await s.put(mockGroup(), alice); // 1
      await s.put(other(), alice); // 2
      await s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 50 }] }), alice); // 3
      await s.delete("shop", alice); // 4
      await s.put({ name: "late", services: [{ name: "z" }] }, alice); // 5
      const at2 = s.revision(2)!.lanegroups;
      expect(await s.rollback(2, { actor: "ops" })).toEqual({ revision: 6, groups: ["late", "mock", "shop"] });
      expect(s.current()).toEqual({ revision: 6, groups: at2 });
      expect(s.revision(6)).toMatchObject({ op: "rollback", actor: "ops", target: 2, group: null, groups: ["late", "mock", "shop"], lanegroups: at2 });
      expect(s.revision(6)!.diff.map((c) => [c.group, c.action])).toEqual([["late", "delete"], ["mock", "replace"], ["shop", "create"]]);
      await s.put({ name: "late", services: [{ name: "z" }] }, alice); // 7
      expect(await s.rollback(7, { actor: "ops" })).toEqual({ revision: 8, groups: [] });
      expect(s.get("late")?.revision).toBe(7);
      expect(s.get("mock")?.revision).toBe(6);
      await expect(attempt(() => s.rollback(99, alice))).rejects.toThrow(NotFoundError);
      await expect(attempt(() => s.rollback(0, alice))).rejects.toThrow(/revision 0 does not exist/);
      if (env.objects) expect(await env.objects()).toEqual(["late", "mock", "shop"]);
    });

    it("a reopened store serves exactly the same groups, ETags and revisions", async () => {
      await env.reset();
      tick = 0;
      const s = await open();
      await s.put(mockGroup(), { actor: "alice" });
      await s.put(other(), { actor: "bob" });
      await s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 5 }] }), alice);
      await s.rollback(1, { actor: "carol" });
      const snapshot = (x: Store) => JSON.stringify({ current: x.current(), list: x.list(), revisions: x.revisions(), detail: [1, 2, 3, 4].map((n) => x.revision(n)) });
      const before = snapshot(s);
      await s.close();
      opened.splice(opened.indexOf(s), 1);
      const s2 = await open();
      expect(snapshot(s2)).toBe(before);
      expect((await s2.put(mockGroup(), { actor: "x", expectedRevision: 4 })).revision).toBe(5);
    });

    it("two stores on one backing store: the second sees the first's commits and keeps numbering", async () => {
      await env.reset();
      tick = 0;
      const a = await open();
      const b = await open();
      await a.put(mockGroup(), alice);
      await until("b sees mock", () => b.get("mock")?.revision === 1);
      expect((await b.put(other(), alice)).revision).toBe(2);
      await until("a sees shop", () => a.get("shop"));
      await expect(attempt(() => a.put(mockGroup(), { actor: "x", expectedRevision: 0 }))).rejects.toThrow(ConflictError);

      // 2 x 8 writes at once on both: every one lands with its own revision, and both logs agree
      const writes = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).put({ name: `g${i}`, services: [{ name: `svc${i}` }] }, { actor: `w${i}` })));
      expect(new Set(writes.map((w) => w.revision)).size).toBe(16);
      await until("logs agree", () => a.current().revision === 18 && b.current().revision === 18);
      expect(JSON.stringify(b.revisions({ limit: 1000 }))).toBe(JSON.stringify(a.revisions({ limit: 1000 })));
      expect(a.revisions({ limit: 1000 }).map((r) => r.revision)).toEqual(Array.from({ length: 18 }, (_, i) => 18 - i));
      expect(a.revisions({ limit: 16 }).map((r) => r.actor).sort()).toEqual(Array.from({ length: 16 }, (_, i) => `w${i}`).sort());
      // and the same group from both at once: one wins, the other is checked again against it
      const same = await Promise.allSettled([attempt(() => a.put(mockGroup({ traceHeader: "from-a" }), { actor: "a", expectedRevision: 1 })), attempt(() => b.put(mockGroup({ traceHeader: "from-b" }), { actor: "b", expectedRevision: 1 }))]);
      expect(same.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
      expect((same.find((r) => r.status === "rejected") as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    });
  });
}
