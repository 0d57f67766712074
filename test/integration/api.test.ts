// The REST API over real HTTP and a real SQLite file: refusals with JSON Pointer paths that change
// nothing, ETags and If-Match, restart persistence, rollback, the audit trail, preview through the
// real filter.wasm, status/traffic wiring, operations endpoints, and OpenAPI <-> routes agreement.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Counter, Registry } from "prom-client";
import type { RuleStatusSource, TrafficSource } from "../../control-plane/src/contracts.js";
import { createApi } from "../../control-plane/src/api/index.js";
import { ReleaseEngine, SqliteReleaseStore } from "../../control-plane/src/rollout/index.js";
import { SqliteStore } from "../../control-plane/src/store/index.js";
import { mockGroup } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";
import { TestServer } from "../support/api.js";

const g = (extra: Record<string, unknown> = {}) => ({ name: "bad", services: [{ name: "svc-a" }, { name: "svc-b" }], ...extra });
const lane = (extra: Record<string, unknown> = {}) => g({ lanes: [{ name: "c", ...extra }] });
const block = (m: Record<string, unknown>) => lane({ match: [m] });

// [what, URL name, body, JSON path that must be named, message]
const BAD: Array<[string, string, unknown, string | RegExp, RegExp]> = [
  ["bad group name", "Bad_Name", g({ name: "Bad_Name" }), "/name", /lowercase/],
  ["name too long", "a".repeat(64), g({ name: "a".repeat(64) }), "/name", /1-63/],
  ["name starting with a digit", "1abc", g({ name: "1abc" }), "/name", /letter/],
  ["body name differs from the URL", "bad", g({ name: "other" }), "/name", /must equal the name in the URL/],
  ["no services", "bad", { name: "bad" }, "/services", /./],
  ["empty services", "bad", g({ services: [] }), "/services", /at least one service/],
  ["duplicate service", "bad", g({ services: [{ name: "x" }, { name: "x" }] }), "/services/1/name", /duplicate service x/],
  ["bad service name", "bad", g({ services: [{ name: "X Y" }] }), "/services/0/name", /lowercase/],
  ["host not a host name", "bad", g({ services: [{ name: "x", hosts: ["a b"] }] }), "/services/0/hosts/0", /host/],
  ["path without leading slash", "bad", g({ services: [{ name: "x", paths: ["api"] }] }), "/services/0/paths/0", /start with \//],
  ["duplicate host in the group", "bad", g({ services: [{ name: "x" }, { name: "y", hosts: ["X"] }] }), "/services/1/hosts/0", /already a host of service x/],
  ["duplicate lane", "bad", g({ lanes: [{ name: "c" }, { name: "c" }] }), "/lanes/1/name", /duplicate lane c/],
  ["lane named like the base lane", "bad", lane({ name: "base" }), "/lanes/0/name", /base lane/],
  ["weight over 100", "bad", lane({ weight: 120 }), "/lanes/0/weight", /0 to 100/],
  ["negative weight", "bad", lane({ weight: -1 }), "/lanes/0/weight", /0 to 100/],
  ["weight with three decimals", "bad", lane({ weight: 1.234 }), "/lanes/0/weight", /two decimals/],
  ["weight as a string", "bad", lane({ weight: "10" }), "/lanes/0/weight", /number/],
  ["weights adding up over 100", "bad", g({ lanes: [{ name: "c", weight: 60 }, { name: "d", weight: 50 }] }), "/lanes", /add up to 110/],
  ["unknown fallback", "bad", lane({ fallback: "nope" }), "/lanes/0/fallback", /unknown lane nope/],
  ["fallback loop", "bad", g({ lanes: [{ name: "c", fallback: "d" }, { name: "d", fallback: "c" }] }), "/lanes/0/fallback", /loops/],
  ["lane service not in the group", "bad", lane({ services: ["zz"] }), "/lanes/0/services/0", /unknown service zz/],
  ["unknown lane field", "bad", lane({ colour: "red" }), /^\/lanes\/0(\/colour)?$/, /colour/],
  ["bad lane header", "bad", g({ laneHeader: "bad header" }), "/laneHeader", /header name/],
  ["bad override trust", "bad", g({ overrideTrust: "everyone" }), "/overrideTrust", /./],
  ["trustIncoming not a boolean", "bad", g({ trustIncoming: "yes" }), "/trustIncoming", /boolean/],
  ["generateTraceId not a boolean", "bad", g({ generateTraceId: "yes" }), "/generateTraceId", /boolean/],
  ["isolation not a mode", "bad", g({ isolation: "strong" }), "/isolation", /permissive.*strict/],
  ["two string matches", "bad", block({ headers: { a: { exact: "1", prefix: "2" } } }), "/lanes/0/match/0/headers/a", /exactly one/],
  ["empty match block", "bad", block({}), "/lanes/0/match/0", /at least one condition/],
  ["bad condition header name", "bad", block({ headers: { "a b": { exact: "1" } } }), "/lanes/0/match/0/headers/a b", /header name/],
  ["unknown os", "bad", block({ os: ["BeOS"] }), "/lanes/0/match/0/os/0", /./],
  ["unknown browser", "bad", block({ browser: ["Netscape"] }), "/lanes/0/match/0/browser/0", /./],
  ["bad method", "bad", block({ method: ["GE T"] }), "/lanes/0/match/0/method/0", /method/],
  ["regex that does not parse", "bad", block({ cookies: { uid: { regex: "(a" } } }), "/lanes/0/match/0/cookies/uid/regex", /regex/],
  ["regex with a backreference", "bad", block({ uri: { regex: "(a+)\\1" } }), "/lanes/0/match/0/uri/regex", /backreference/],
  ["sticky key with header and cookie", "bad", g({ stickyKey: { header: "x", cookie: "y" } }), "/stickyKey", /exactly one of header, cookie/],
  ["generated sticky key without a cookie", "bad", g({ stickyKey: { header: "x", generate: true } }), "/stickyKey", /generate needs a cookie/],
  ["service of another group", "bad", g({ services: [{ name: "mockb" }] }), "/services/0/name", /already belongs to lane group mock/],
  ["host of another group", "bad", g({ services: [{ name: "x", hosts: ["web.shop.svc.cluster.local"] }] }), "/services/0/hosts/0", /already routes to shop\/web/],
  ["replacing a stored group with a bad weight", "mock", mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 100.5 }] }), "/lanes/0/weight", /0 to 100/],
  ["a list instead of a group", "bad", [g()], "", /JSON object/],
];

let t: TestServer;
const statusSource: RuleStatusSource = {
  status: () => ({ version: "abc123", revision: 7, nodes: [{ nodeId: "n1", version: "abc123", subscribers: [] }, { nodeId: "n2", version: "", subscribers: [] }] }),
};
const trafficCalls: Array<[string, number]> = [];
const trafficSource: TrafficSource = {
  summary: (group, windowMs) => {
    trafficCalls.push([group, windowMs]);
    return { group, windowMs, services: [{ service: "mocka", lane: "canary", requests: 3, observedShare: 0.3, configuredShare: 0.1, errorRate: 0, grpcStatuses: {}, p50Ms: 1, p99Ms: 2 }], edge: [] };
  },
};
const registry = new Registry();
const xdsCounter = new Counter({ name: "graylane_xds_test_pushes_total", help: "added by another part", registers: [registry] });

beforeAll(async () => {
  t = await TestServer.start({ registry });
});
afterAll(async () => {
  await t.stop();
});

async function state(): Promise<string> {
  const [groups, revisions] = await Promise.all([t.call("GET", "/v1/lanegroups"), t.call("GET", "/v1/revisions?limit=1000")]);
  return JSON.stringify([groups.body, revisions.body]);
}

describe("lane groups", () => {
  it("PUT creates (201) then replaces (200), answering the revision, the group and its ETag", async () => {
    const a = await t.call("PUT", "/v1/lanegroups/mock", mockGroup(), { "x-graylane-actor": "alice" });
    expect(a.status).toBe(201);
    expect(a.headers.get("etag")).toBe('"1"');
    expect(a.headers.get("location")).toBe("/v1/lanegroups/mock");
    expect(a.body.revision).toBe(1);
    expect(a.body.lanegroup).toMatchObject({ name: "mock", laneHeader: "x-graylane-lane", stickySalt: "mock" });
    const b = await t.call("PUT", "/v1/lanegroups/shop", shopGroup());
    expect(b.status).toBe(201);
    const c = await t.call("PUT", "/v1/lanegroups/mock", mockGroup({ traceHeader: "x-request-id" }), { "x-graylane-actor": "bob" });
    expect(c.status).toBe(200);
    expect(c.headers.get("etag")).toBe('"3"');
    const get = await t.call("GET", "/v1/lanegroups/mock");
    expect(get.status).toBe(200);
    expect(get.headers.get("etag")).toBe('"3"');
    expect(get.body).toEqual(c.body);
    expect((await t.call("GET", "/v1/lanegroups/mock", undefined, { "if-none-match": '"3"' })).status).toBe(304);
    const list = await t.call("GET", "/v1/lanegroups");
    expect(list.body.revision).toBe(3);
    expect(list.body.lanegroups.map((x: any) => [x.lanegroup.name, x.revision])).toEqual([["mock", 3], ["shop", 2]]);
  });

  it("the list carries each group's configured share per lane (base gets what the weights leave)", async () => {
    const weighted = { name: "weighted", services: [{ name: "svc-w" }], baseLane: "stable", lanes: [{ name: "a", weight: 12.34 }, { name: "b" }, { name: "c", weight: 0.07 }] };
    expect((await t.call("PUT", "/v1/lanegroups/weighted", weighted)).status).toBe(201);
    const item = (await t.call("GET", "/v1/lanegroups")).body.lanegroups.find((x: any) => x.lanegroup.name === "weighted");
    expect(item.configuredShares).toEqual({ stable: 0.8759, a: 0.1234, b: 0, c: 0.0007 });
    expect((await t.call("GET", "/v1/lanegroups/weighted")).body).not.toHaveProperty("configuredShares"); // the resource itself is unchanged
    expect((await t.call("DELETE", "/v1/lanegroups/weighted")).status).toBe(200);
  });

  it(`refuses ${BAD.length} bad lane groups with 400 and the JSON path, changing nothing`, async () => {
    expect(BAD.length).toBeGreaterThanOrEqual(25);
    const before = await state();
    const mockBefore = await t.call("GET", "/v1/lanegroups/mock");
    for (const [what, name, body, path, message] of BAD) {
      const r = await t.call("PUT", `/v1/lanegroups/${encodeURIComponent(name)}`, body);
      expect(r.status, what).toBe(400);
      const hit = r.body.errors.find((e: any) => (typeof path === "string" ? e.path === path : path.test(e.path)));
      expect(hit, `${what}: ${JSON.stringify(r.body)}`).toBeDefined();
      expect(hit.message, what).toMatch(message);
      if (name !== "mock") expect((await t.call("GET", `/v1/lanegroups/${encodeURIComponent(name)}`)).status, what).toBe(404);
    }
    expect(await state()).toBe(before);
    expect(await t.call("GET", "/v1/lanegroups/mock")).toMatchObject({ status: 200, body: mockBefore.body });
  });

  it("reports every problem at once", async () => {
    const r = await t.call("PUT", "/v1/lanegroups/other", g({ name: "other2", laneHeader: "a b" }));
    expect(r.status).toBe(400);
    expect(r.body.errors.map((e: any) => e.path)).toEqual(["/name", "/laneHeader"]);
    const r2 = await t.call("PUT", "/v1/lanegroups/bad", lane({ weight: 70, services: ["zz"], fallback: "nope" }));
    expect(r2.body.errors.map((e: any) => e.path).sort()).toEqual(["/lanes/0/fallback", "/lanes/0/services/0"]);
  });

  it("invalid JSON and non-object bodies are 400 in the error shape", async () => {
    const before = await state();
    const r = await t.call("PUT", "/v1/lanegroups/bad", '{"name": "bad",');
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatchObject({ path: "", message: expect.stringMatching(/^invalid JSON/) });
    expect((await t.call("PUT", "/v1/lanegroups/bad", "")).status).toBe(400);
    expect((await t.call("PUT", "/v1/lanegroups/bad", '"text"')).status).toBe(400);
    expect((await t.call("POST", "/v1/rollback", "{")).status).toBe(400);
    expect(await state()).toBe(before);
  });

  it("a body without a name takes the URL's", async () => {
    const r = await t.call("PUT", "/v1/lanegroups/noname", { services: [{ name: "lonely" }] });
    expect(r.status).toBe(201);
    expect(r.body.lanegroup.name).toBe("noname");
    expect((await t.call("DELETE", "/v1/lanegroups/noname")).status).toBe(200);
  });

  it("GET and DELETE of a missing group are 404 whatever the name", async () => {
    for (const name of ["nope", "Not_Valid!", "a".repeat(100), "%E2%9C%93", "with%20space"]) {
      for (const m of ["GET", "DELETE"]) {
        const r = await t.call(m, `/v1/lanegroups/${name}`);
        expect(r.status, `${m} ${name}`).toBe(404);
        expect(r.body.errors[0].message).toMatch(/does not exist/);
      }
    }
    expect((await t.call("DELETE", "/v1/lanegroups/nope", undefined, { "if-match": '"1"' })).status).toBe(404);
  });

  it("If-Match: quoted, bare or weak ETag; 412 on a stale one, on a missing group, or on garbage", async () => {
    const etag = (await t.call("GET", "/v1/lanegroups/shop")).headers.get("etag")!;
    const n = Number(etag.replace(/"/g, ""));
    const before = await state();
    for (const stale of [`"${n - 1}"`, String(n + 5), "W/\"1\"", "garbage", '"1", "0"']) {
      const r = await t.call("PUT", "/v1/lanegroups/shop", shopGroup({ traceHeader: "x-b3-traceid" }), { "if-match": stale });
      expect(r.status, stale).toBe(412);
      expect(r.body.errors[0].message).toMatch(/lane group shop is at revision/);
    }
    expect((await t.call("PUT", "/v1/lanegroups/fresh", { services: [{ name: "f" }] }, { "if-match": "*" })).status).toBe(412);
    expect((await t.call("PUT", "/v1/lanegroups/shop", shopGroup(), { "if-none-match": "*" })).status).toBe(412);
    expect((await t.call("DELETE", "/v1/lanegroups/shop", undefined, { "if-match": `"${n - 1}"` })).status).toBe(412);
    expect(await state()).toBe(before);

    const ok = await t.call("PUT", "/v1/lanegroups/shop", shopGroup({ traceHeader: "x-b3-traceid" }), { "if-match": String(n) });
    expect(ok.status).toBe(200);
    const m = ok.body.revision;
    expect(ok.headers.get("etag")).toBe(`"${m}"`);
    expect((await t.call("PUT", "/v1/lanegroups/shop", shopGroup(), { "if-match": `"1", "${m}"` })).status).toBe(200);
    const weak = (await t.call("GET", "/v1/lanegroups/shop")).headers.get("etag")!;
    expect((await t.call("PUT", "/v1/lanegroups/shop", shopGroup({ traceHeader: "my-request-id" }), { "if-match": `W/${weak}` })).status).toBe(200);
    expect((await t.call("PUT", "/v1/lanegroups/shop", shopGroup(), { "if-match": "*" })).status).toBe(200);
  });

  it("the audit trail records actor, time, op and diff; /v1/revisions pages newest first", async () => {
    const list = await t.call("GET", "/v1/revisions");
    expect(list.status).toBe(200);
    const revs = list.body.revisions;
    expect(revs[0].revision).toBeGreaterThan(revs.at(-1).revision);
    const first = revs.at(-1);
    expect(first).toMatchObject({ revision: 1, actor: "alice", op: "create", group: "mock", groups: ["mock"] });
    expect(Date.parse(first.time)).toBeGreaterThan(Date.now() - 60_000);
    expect(first.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const third = await t.call("GET", "/v1/revisions/3");
    expect(third.body).toMatchObject({ revision: 3, actor: "bob", op: "replace", group: "mock" });
    expect(third.body.diff).toEqual([{ group: "mock", action: "replace", patch: [{ op: "replace", path: "/traceHeader", value: "x-request-id", old: "my-request-id" }] }]);
    expect(third.body.lanegroups.map((x: any) => x.name)).toEqual(["mock", "shop"]);
    expect(revs.find((r: any) => r.group === "noname" && r.op === "delete").actor).toBe("anonymous");

    const page = await t.call("GET", "/v1/revisions?limit=2");
    expect(page.body.revisions).toHaveLength(2);
    const next = await t.call("GET", `/v1/revisions?limit=2&before=${page.body.next}`);
    expect(next.body.revisions[0].revision).toBe(page.body.revisions[1].revision - 1);
    const byGroup = await t.call("GET", "/v1/revisions?group=shop");
    expect(byGroup.body.revisions.every((r: any) => r.groups.includes("shop"))).toBe(true);
    expect((await t.call("GET", "/v1/revisions?limit=0")).body.errors[0].path).toBe("/limit");
    for (const n of ["999", "0", "abc"]) expect((await t.call("GET", `/v1/revisions/${n}`)).status).toBe(404);
  });

  it("rollback writes a new revision whose content equals revision n's", async () => {
    expect((await t.call("PUT", "/v1/lanegroups/shop", shopGroup({ trustIncoming: true }))).status).toBe(200);
    const at3 = (await t.call("GET", "/v1/revisions/3")).body.lanegroups;
    const latest = (await t.call("GET", "/v1/revisions?limit=1")).body.revisions[0].revision;
    const r = await t.call("POST", "/v1/rollback", { revision: 3 }, { "x-graylane-actor": "ops" });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ revision: latest + 1, target: 3, groups: ["shop"] });
    const now = await t.call("GET", "/v1/lanegroups");
    expect(now.body.lanegroups.map((x: any) => x.lanegroup)).toEqual(at3);
    expect(now.body.lanegroups.find((x: any) => x.lanegroup.name === "shop").revision).toBe(latest + 1);
    expect(now.body.lanegroups.find((x: any) => x.lanegroup.name === "mock").revision).toBe(3);
    expect((await t.call("GET", `/v1/revisions/${latest + 1}`)).body).toMatchObject({ op: "rollback", target: 3, actor: "ops", group: null });
    const before = await state();
    expect((await t.call("POST", "/v1/rollback", { revision: 999 })).status).toBe(404);
    const bad = await t.call("POST", "/v1/rollback", { revision: "3" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe("/revision");
    expect(await state()).toBe(before);
  });

  it("a restarted server serves exactly the same groups, ETags and revisions", async () => {
    const snapshot = async () => {
      const groups = await t.call("GET", "/v1/lanegroups");
      const revs = await t.call("GET", "/v1/revisions?limit=1000");
      const details = await Promise.all(revs.body.revisions.map((r: any) => t.call("GET", `/v1/revisions/${r.revision}`)));
      const etags = await Promise.all(groups.body.lanegroups.map((x: any) => t.call("GET", `/v1/lanegroups/${x.lanegroup.name}`)));
      return JSON.stringify([groups.body, revs.body, details.map((d) => d.body), etags.map((e) => [e.headers.get("etag"), e.body])]);
    };
    const before = await snapshot();
    const oldUrl = t.url;
    await t.restart();
    expect(t.url).not.toBe(oldUrl);
    expect(await snapshot()).toBe(before);
    const etag = (await t.call("GET", "/v1/lanegroups/mock")).headers.get("etag")!;
    expect((await t.call("PUT", "/v1/lanegroups/mock", mockGroup(), { "if-match": etag })).status).toBe(200);
  });
});

describe("preview through the real filter.wasm", () => {
  beforeAll(async () => {
    // mock: override header, content rule (grayrelease), sticky weight 100 for the weight case
    const r = await t.call("PUT", "/v1/lanegroups/mock", mockGroup({
      lanes: [
        { name: "canary", services: ["mocka"], match: [{ headers: { grayrelease: { exact: "version2" } } }, { cookies: { uid: { regex: "1[0-9]{3}" } } }] },
        { name: "beta", services: ["mockb"], match: [{ queryParams: { beta: { exact: "1" } }, method: ["POST"] }] },
      ],
    }));
    expect(r.status).toBe(200);
  });
  const preview = (service: string, request: Record<string, unknown> = {}, group = "mock") => t.call("POST", "/v1/preview", { group, service, request });

  it("an override header picks canary at the edge", async () => {
    const r = await preview("mocka", { headers: { "x-asm-prefer-tag": "canary" } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ lane: "canary", route: "canary", source: "override" });
    // the lane is kept, the route falls back where the service has no canary
    expect((await preview("mockc", { headers: { "x-asm-prefer-tag": "canary" } })).body).toMatchObject({ lane: "canary", route: "base", source: "override" });
  });

  it("an outsider's lane header is removed at the edge and ignored", async () => {
    const r = await preview("mocka", { headers: { "x-graylane-lane": "canary", "x-graylane-route": "canary", baggage: "graylane=canary" } });
    expect(r.body).toMatchObject({ lane: "base", route: "base", source: "base" });
  });

  it("content rules: header, cookie regex, query + method", async () => {
    expect((await preview("mocka", { headers: { grayrelease: "version2" } })).body).toMatchObject({ lane: "canary", route: "canary", source: "rule" });
    expect((await preview("mocka", { headers: { cookie: "a=b; uid=1234" } })).body).toMatchObject({ lane: "canary", source: "rule" });
    expect((await preview("mocka", { headers: { cookie: "uid=99" } })).body).toMatchObject({ lane: "base", source: "base" });
    expect((await preview("mockb", { method: "POST", path: "/x?beta=1" })).body).toMatchObject({ lane: "beta", route: "beta", source: "rule" });
    expect((await preview("mockb", { method: "GET", path: "/x?beta=1" })).body).toMatchObject({ lane: "base", source: "base" });
  });

  it("empty trace memory every time, and the answer follows the latest revision", async () => {
    // a trace id seen before would be remembered inbound; at the edge a fresh VM has nothing
    expect((await preview("mocka", { headers: { "my-request-id": "t1", grayrelease: "version2" } })).body.source).toBe("rule");
    expect((await preview("mocka", { headers: { "my-request-id": "t1" } })).body.source).toBe("base");
    const put = await t.call("PUT", "/v1/lanegroups/mock", mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 100 }] }));
    const r = await preview("mocka", { headers: { "x-user-id": "u1" } });
    expect(r.body).toEqual({ lane: "canary", route: "canary", source: "weight", revision: put.body.revision });
  });

  it("refuses bad previews with paths", async () => {
    expect((await preview("mocka", {}, "ghost")).status).toBe(404);
    const wrongService = await preview("web");
    expect(wrongService.status).toBe(400);
    expect(wrongService.body.errors[0]).toMatchObject({ path: "/service", message: expect.stringMatching(/not a service of lane group mock/) });
    const bad = await t.call("POST", "/v1/preview", { group: "mock", request: { path: "nope", headers: { "a b": "1" }, extra: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: any) => e.path).sort()).toEqual(["/request", "/request/headers/a b", "/request/path", "/service"]);
  });

  it("answers 503 when the filter is not built", async () => {
    const store = new SqliteStore(":memory:");
    store.put(mockGroup(), { actor: "t" });
    const app = createApi({ store, wasmPath: "/nonexistent/filter.wasm" });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const port = (server.address() as { port: number }).port;
    const r = await fetch(`http://127.0.0.1:${port}/v1/preview`, { method: "POST", body: JSON.stringify({ group: "mock", service: "mocka" }) });
    expect(r.status).toBe(503);
    expect((await r.json()).errors[0].message).toMatch(/make build/);
    server.close();
    app.dispose();
    store.close();
  });
});

describe("status, traffic and operations", () => {
  it("status and traffic come from the sources the API was given", async () => {
    const store = new SqliteStore(":memory:");
    const app = createApi({ store, rules: statusSource, traffic: trafficSource });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const get = async (path: string) => { const r = await fetch(base + path); return { status: r.status, body: await r.json() as any }; };
    const st = statusSource.status();
    expect((await get("/v1/status")).body).toEqual({ ...st, page: { offset: 0, limit: 1000, nodes: st.nodes.length } });
    // Paged: a page of one node, then the next.
    expect((await get("/v1/status?limit=1&offset=1")).body).toMatchObject({ nodes: [{ nodeId: "n2" }], page: { offset: 1, limit: 1, nodes: 2 } });
    expect((await get("/v1/status?limit=0")).status).toBe(400);
    const r = await get("/v1/traffic?group=mock&window=5m");
    expect(r.status).toBe(200);
    expect(r.body.services[0]).toMatchObject({ service: "mocka", lane: "canary" });
    expect(trafficCalls.at(-1)).toEqual(["mock", 300_000]);
    await get("/v1/traffic?group=mock");
    expect(trafficCalls.at(-1)).toEqual(["mock", 60_000]);
    expect((await get("/v1/traffic")).body.errors[0].path).toBe("/group");
    expect((await get("/v1/traffic?group=mock&window=soon")).body.errors[0].path).toBe("/window");
    server.close();
    app.dispose();
    store.close();
  });

  it("the control plane serves its own rule push's status and its traffic ingestion's counts", async () => {
    const status = (await t.call("GET", "/v1/status")).body;
    expect(status).toEqual({
      version: t.server.grpc.status().version, revision: t.server.store.current().revision, nodes: [],
      page: { offset: 0, limit: 1000, nodes: 0 }, summary: { connected: 0, atVersion: 0, pending: 0, nacked: 0, byVersion: {} },
    });
    expect(status.version).toMatch(/./);
    expect((await t.call("GET", "/v1/traffic?group=mock&window=5m")).body).toEqual(t.server.traffic.summary("mock", 300_000));
  });

  it("no-op defaults without a rule push or traffic ingestion", async () => {
    const store = new SqliteStore(":memory:");
    store.put(mockGroup(), { actor: "t" });
    const app = createApi({ store });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    expect(await (await fetch(`${base}/v1/status`)).json()).toEqual({ version: "", revision: 1, nodes: [], page: { offset: 0, limit: 1000, nodes: 0 } });
    expect(await (await fetch(`${base}/v1/traffic?group=mock&window=1h`)).json()).toEqual({ group: "mock", windowMs: 3_600_000, services: [], edge: [] });
    server.close();
    app.dispose();
    store.close();
  });

  it("healthz, readyz, metrics (with the shared registry's metrics), unknown routes", async () => {
    expect((await t.call("GET", "/healthz")).body).toEqual({ status: "ok" });
    expect((await t.call("GET", "/readyz")).body).toEqual({ status: "ready" });
    xdsCounter.inc(2);
    const m = await t.call("GET", "/metrics");
    expect(m.status).toBe(200);
    expect(m.headers.get("content-type")).toMatch(/text\/plain/);
    expect(m.body).toMatch(/graylane_revisions_total\{op="create"\} \d+/);
    expect(m.body).toMatch(/graylane_revisions_total\{op="rollback"\} 1/);
    expect(m.body).toMatch(/graylane_store_revision \d+/);
    expect(m.body).toMatch(/graylane_xds_test_pushes_total 2/);
    expect(m.body).toMatch(/graylane_http_requests_total\{method="PUT",route="\/v1\/lanegroups\/:name",code="412"\}/);
    const nf = await t.call("GET", "/v2/nothing");
    expect(nf.status).toBe(404);
    expect(nf.body.errors[0].message).toBe("no route GET /v2/nothing");
  });

  it("readyz is 503 when an extension is not ready", async () => {
    const store = new SqliteStore(":memory:");
    const app = createApi({ store, ready: () => false });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    const r = await fetch(`http://127.0.0.1:${(server.address() as { port: number }).port}/readyz`);
    expect(r.status).toBe(503);
    server.close();
    app.dispose();
    store.close();
  });
});

describe("OpenAPI document", () => {
  it("describes every express route, and every described route is served", async () => {
    const doc = (await t.call("GET", "/openapi.json")).body;
    expect(doc.openapi).toBe("3.1.0");
    const documented = new Set<string>();
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.paths)) {
      for (const m of ["get", "put", "post", "delete", "patch"]) if (item[m]) documented.add(`${m.toUpperCase()} ${path}`);
    }
    const store = new SqliteStore(":memory:");
    const app = createApi({ store, releases: { engine: new ReleaseEngine({ store, releases: new SqliteReleaseStore(store.database) }) } });
    const served = new Set<string>();
    // The routes of the app and of the routers it mounts (releases, overrides), but the dashboard's
    // static pages, which stay out of /openapi.json (dashboard.test.ts).
    const collect = (stack: any[]) => {
      for (const layer of stack) {
        if (layer.handle?.stack) collect(layer.handle.stack);
        if (!layer.route || layer.route.path === "/" || String(layer.route.path).startsWith("/dashboard")) continue;
        const path = String(layer.route.path).replace(/:(\w+)/g, "{$1}");
        for (const m of Object.keys(layer.route.methods)) served.add(`${m.toUpperCase()} ${path}`);
      }
    };
    collect((app as any).router.stack);
    app.dispose();
    store.close();
    expect(served.size).toBe(20);
    expect([...served].sort()).toEqual([...documented].sort());
    // every $ref resolves
    for (const [, name] of JSON.stringify(doc).matchAll(/"#\/components\/schemas\/(\w+)"/g)) expect(doc.components.schemas, name).toHaveProperty(name);
    // every path parameter is declared
    for (const [path, item] of Object.entries<any>(doc.paths)) {
      for (const p of path.match(/\{(\w+)\}/g) ?? []) {
        expect(item.parameters?.some((x: any) => `{${x.name}}` === p && x.in === "path"), `${path} ${p}`).toBe(true);
      }
    }
  });
});
