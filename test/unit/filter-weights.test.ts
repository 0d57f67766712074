// Sticky weights: the shared hash vectors, observed shares, monotonic growth, stickiness, and the
// generated cookie for anonymous users, all through the real filter.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { newFilter, routeTo, type Filter } from "../support/filter.js";

const vectors = JSON.parse(readFileSync("test/fixtures/hash.json", "utf8")) as {
  buckets: Array<{ salt: string; key: string; bucket: number }>;
};
const toSvc = routeTo("svc");

function weighted(lanes: Array<{ name: string; weight: number }>, extra: Record<string, unknown> = {}) {
  return {
    name: "w", services: [{ name: "svc" }], stickyKey: { header: "x-user-id" },
    lanes: lanes.map((l) => ({ ...l, services: ["svc"] })), ...extra,
  };
}

/** Lane of each key, one request per key through on_request_headers only. */
function lanes(f: Filter, keys: string[]): string[] {
  return keys.map((k) => {
    const s = f.send({ "x-user-id": k }, toSvc);
    const lane = s.requestHeader("x-graylane-lane")!;
    s.complete();
    return lane;
  });
}

describe("sticky weights", () => {
  it("buckets match ../shared/test-vectors/hash.json (murmur3(salt:key) % 10000)", async () => {
    for (const row of vectors.buckets.filter((r) => r.key !== "")) {
      // lane "hit" owns exactly the row's bucket: [bucket, bucket + 1)
      const ls = row.bucket > 0 ? [{ name: "below", weight: row.bucket / 100 }] : [];
      ls.push({ name: "hit", weight: 0.01 });
      const f = await newFilter({ groups: [weighted(ls, { stickySalt: row.salt })] });
      expect(lanes(f, [row.key]), JSON.stringify(row)).toEqual(["hit"]);
    }
  });

  const keys = Array.from({ length: 100_000 }, (_, i) => `user-${i}`);

  for (const pct of [1, 10, 50]) {
    it(`over 100,000 keys the observed share of a ${pct}% lane is within ±0.5 points`, async () => {
      const f = await newFilter({ groups: [weighted([{ name: "canary", weight: pct }])] });
      const got = lanes(f, keys).filter((l) => l === "canary").length / keys.length * 100;
      expect(Math.abs(got - pct)).toBeLessThanOrEqual(0.5);
    });
  }

  it("raising 1 → 5 → 10 → 50 → 100% never moves a key out of the lane", async () => {
    const sample = keys.slice(0, 20_000);
    let previous = new Set<string>();
    for (const pct of [1, 5, 10, 50, 100]) {
      const f = await newFilter({ groups: [weighted([{ name: "canary", weight: pct }])] });
      const inLane = new Set(sample.filter((_, i) => lanes(f, [sample[i]])[0] === "canary"));
      for (const k of previous) expect(inLane.has(k), `${k} left canary at ${pct}%`).toBe(true);
      expect(inLane.size).toBeGreaterThan(previous.size);
      previous = inLane;
    }
    expect(previous.size).toBe(sample.length);
  });

  it("the same key always gets the same lane, on every worker VM", async () => {
    const group = weighted([{ name: "a", weight: 30 }, { name: "b", weight: 30 }]);
    const w1 = await newFilter({ groups: [group] });
    const w2 = await newFilter({ groups: [group] });
    const sample = keys.slice(0, 2000);
    const first = lanes(w1, sample);
    expect(lanes(w1, sample)).toEqual(first);
    expect(lanes(w2, sample)).toEqual(first);
    expect(new Set(first)).toEqual(new Set(["a", "b", "base"]));
  });

  it("a sticky cookie key works like a header key", async () => {
    const f = await newFilter({ groups: [weighted([{ name: "canary", weight: 50 }], { stickyKey: { cookie: "uid" } })] });
    const byHeader = await newFilter({ groups: [weighted([{ name: "canary", weight: 50 }])] });
    for (const k of keys.slice(0, 200)) {
      const s = f.exchange({ cookie: `theme=dark; uid=${k}` }, 200, toSvc);
      expect(s.requestHeader("x-graylane-lane")).toBe(lanes(byHeader, [k])[0]);
    }
  });

  it("anonymous users get a generated id cookie, and keep their lane with it", async () => {
    const group = weighted([{ name: "canary", weight: 50 }], { stickyKey: { cookie: "gl-uid", generate: true, maxAgeSeconds: 86400 } });
    const f = await newFilter({ groups: [group] });
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const first = f.exchange({ ":path": "/" }, 200, toSvc);
      const setCookie = first.responseHeader("set-cookie");
      expect(setCookie).toMatch(/^gl-uid=[0-9a-f]{16}; Path=\/; Max-Age=86400; HttpOnly; SameSite=Lax$/);
      const id = /^gl-uid=([0-9a-f]{16})/.exec(setCookie!)![1];
      ids.add(id);
      const again = f.exchange({ cookie: `gl-uid=${id}` }, 200, toSvc);
      expect(again.requestHeader("x-graylane-lane")).toBe(first.requestHeader("x-graylane-lane"));
      expect(again.responseHeader("set-cookie")).toBeUndefined();
    }
    expect(ids.size).toBe(50);
  });

  it("without opting in, no cookie is ever set", async () => {
    const f = await newFilter({ groups: [weighted([{ name: "canary", weight: 50 }], { stickyKey: { cookie: "gl-uid" } })] });
    const s = f.exchange({ "x-request-id": "r1" }, 200, toSvc);
    expect(s.responseHeader("set-cookie")).toBeUndefined();
  });
});
