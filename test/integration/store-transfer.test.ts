// graylane store export / import between two SQLite files (SQLite → Kubernetes is in
// test/e2e/kube-controller.test.ts): the same contents in the same order with the same actors,
// a rollback that moved a service between groups included; refusals name what is wrong.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { SqliteStore } from "../../control-plane/src/store/index.js";
import { exportStore, replayPlan } from "../../control-plane/src/store/transfer.js";
import { mockGroup } from "../support/filter.js";

const dir = mkdtempSync(join(tmpdir(), "graylane-transfer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runCli;

/** The contents of the log, revision by revision: [actor, the groups after it]. */
const history = (s: SqliteStore) => exportStore(s).revisions.map((r) => [r.actor, r.lanegroups]);

describe("graylane store export / import", () => {
  it("replays the history of one SQLite store into another: contents, order and actors", async () => {
    const from = new SqliteStore(join(dir, "from.db"));
    await from.put(mockGroup(), { actor: "alice" });
    await from.put({ name: "shop", services: [{ name: "cart" }] }, { actor: "bob" });
    await from.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 10 }] }), { actor: "carol" });
    // mockc moves from mock to shop in one rollback later: delete it from mock, add it to shop...
    const before = from.current().revision;
    await from.put(mockGroup({ services: [{ name: "mocka" }, { name: "mockb" }], lanes: [] }), { actor: "dave" });
    await from.put({ name: "shop", services: [{ name: "cart" }, { name: "mockc" }] }, { actor: "dave" });
    // ... and back: one revision that changes both groups at once.
    await from.rollback(before, { actor: "erin" });
    await from.delete("shop", { actor: "frank" });
    const want = history(from);
    from.close();

    const file = join(dir, "export.json");
    expect(await run("store", "export", "--store", `sqlite:${join(dir, "from.db")}`, "--file", file)).toEqual({ code: 0, err: "", out: `exported 1 lane groups and 7 revisions to ${file}\n` });
    const imported = await run("store", "import", "--store", `sqlite:${join(dir, "to.db")}`, "-f", file);
    expect(imported).toEqual({ code: 0, err: "", out: "imported 7 revisions as 8 writes; 1 lane groups at revision 8\n" });

    const to = new SqliteStore(join(dir, "to.db"));
    const got = history(to);
    // The rollback changed two groups: it is two revisions in the target, each with erin as actor.
    expect(got.map(([actor]) => actor)).toEqual(["alice", "bob", "carol", "dave", "dave", "erin", "erin", "frank"]);
    const states = (h: unknown[][]) => h.map(([, groups]) => JSON.stringify(groups));
    expect(states(got).filter((_, i) => i !== 5)).toEqual(states(want)); // every exported state, in order (5 is the rollback's halfway state)
    expect(to.list().map((g) => g.lanegroup)).toEqual(JSON.parse(readFileSync(file, "utf8")).groups.map((g: { lanegroup: unknown }) => g.lanegroup));
    to.close();
  });

  it("refuses a target that is not empty, and a file that is not an export, naming it", async () => {
    const file = join(dir, "export.json");
    const busy = await run("store", "import", "--store", `sqlite:${join(dir, "to.db")}`, "-f", file);
    expect(busy.code).toBe(2);
    expect(busy.err).toMatch(/the target store is not empty \(1 lane groups, revision 8\)/);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ format: "something-else", revisions: [] }));
    expect(await run("store", "import", "--store", `sqlite:${join(dir, "fresh.db")}`, "-f", bad)).toMatchObject({ code: 2, err: expect.stringContaining(`${bad}: /format: want "graylane.io/store-export/v1"`) });
  });

  it("the replay of a log whose oldest revisions were pruned starts from the first retained state", () => {
    const g = (name: string, services: string[]) => ({ name, services: services.map((s) => ({ name: s })) }) as never;
    const plan = replayPlan({
      format: "graylane.io/store-export/v1", exportedAt: "",
      revisions: [
        { revision: 41, actor: "x", lanegroups: [g("a", ["s1"]), g("b", ["s2"])] } as never,
        { revision: 42, actor: "y", lanegroups: [g("b", ["s2"])] } as never,
      ],
      groups: [{ name: "b", revision: 42, lanegroup: g("b", ["s2"]) }],
    });
    expect(plan.map((s) => [s.from, s.actor, s.deletes, s.puts.map((p) => p.name)])).toEqual([[41, "x", [], ["a", "b"]], [42, "y", ["a"], []]]);
  });
});
