// The release engine's overlay mode (beside a Kubernetes store, where Git owns the specs), on a real
// SQLite store and release store: the weights live in the releases and are laid over the lanes
// (rollout/overlay.ts); the spec never changes; releases on two lanes of one group are checked
// together. Against a real API server: test/e2e/kube-store.test.ts.
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ReleaseEngine, SqliteReleaseStore } from "../../control-plane/src/rollout/index.js";
import { ReleaseOverlayRules } from "../../control-plane/src/rollout/overlay.js";
import { SqliteStore } from "../../control-plane/src/store/index.js";

describe("release overlays", () => {
  it("weights are laid over the spec while a release is active; two releases together stay within 100%", async () => {
    const store = new SqliteStore(":memory:");
    const releases = new SqliteReleaseStore(new Database(":memory:"));
    const engine = new ReleaseEngine({ store, releases, laneSettings: "overlay", tickMs: 10 });
    // The SQLite release store does not announce changes: the overlay is read after each step here.
    const rules = () => new ReleaseOverlayRules(store, releases).current().groups[0]!;
    try {
      await store.put({ name: "g", services: [{ name: "s" }], lanes: [{ name: "blue", services: ["s"] }, { name: "green", services: ["s"] }] }, { actor: "git" });
      const a = await engine.create({ name: "a", group: "g", lane: "blue", steps: [{ setWeight: 60 }, { pause: {} }] }, "alice");
      expect(a).toMatchObject({ status: "paused", weight: 60 });
      expect(rules().lanes.map((l) => [l.name, l.weight])).toEqual([["blue", 60], ["green", 0]]);
      expect(store.get("g")!.lanegroup.lanes.map((l) => l.weight)).toEqual([0, 0]); // the spec as written
      expect(store.revisions().map((r) => r.actor)).toEqual(["git"]); // no revision per step
      // 60 + 60 > 100: refused at creation, against the group as release a leaves it.
      await expect(engine.create({ name: "b", group: "g", lane: "green", steps: [{ setWeight: 60 }] }, "bob")).rejects.toThrow(/more than 100/);
      const b = await engine.create({ name: "b", group: "g", lane: "green", steps: [{ setWeight: 40 }, { pause: {} }] }, "bob");
      expect(b).toMatchObject({ status: "paused", weight: 40 });
      expect(rules().lanes.map((l) => [l.name, l.weight])).toEqual([["blue", 60], ["green", 40]]);
      // Ended, a release lays nothing: the lane is as its spec says.
      await engine.operate("a", "abort", "alice");
      expect(rules().lanes.map((l) => [l.name, l.weight])).toEqual([["blue", 0], ["green", 40]]);
    } finally {
      await engine.stop();
      store.close();
    }
  });
});
