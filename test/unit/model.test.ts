// Lane group validation: defaults, and every problem reported at once with its JSON Pointer.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { parseLaneGroup, storedLaneGroup, validateLaneGroups, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";

const example = JSON.parse(readFileSync("test/fixtures/lanegroup-mock.json", "utf8"));

function errorsOf(input: unknown) {
  const r = parseLaneGroup(input);
  if (r.ok) throw new Error("expected errors, got a valid group");
  return r.errors;
}

function base(extra: Record<string, unknown> = {}) {
  return { name: "g", services: [{ name: "a" }, { name: "b" }], ...extra };
}

describe("lane group model", () => {
  it("DESIGN.md's example parses, with defaults filled in", () => {
    const r = parseLaneGroup(example);
    expect(r.ok).toBe(true);
    const g = (r as { value: LaneGroup }).value;
    expect(g.overrideTrust).toBe("any");
    expect(g.trustIncoming).toBe(false);
    expect(g.stickySalt).toBe("mock");
    expect(g.services[1]).toEqual({ name: "mockb", hosts: ["mockb"], paths: [] });
    expect(g.lanes[0]).toMatchObject({ name: "canary", fallback: "base", weight: 0 });
  });

  it("applies every documented default", () => {
    const r = parseLaneGroup(base({ lanes: [{ name: "c" }] }));
    expect(r).toMatchObject({ ok: true, value: {
      baseLane: "base", laneHeader: "x-graylane-lane", routeHeader: "x-graylane-route", traceHeader: "x-request-id",
      overrideTrust: "any", trustIncoming: false, generateTraceId: true, isolation: "permissive", stickySalt: "g", lanes: [{ name: "c", services: [], fallback: "base", weight: 0, match: [] }],
    } });
    expect((r as { value: LaneGroup }).value.overrideHeader).toBeUndefined();
    const gen = parseLaneGroup(base({ stickyKey: { cookie: "uid", generate: true } }));
    expect((gen as { value: LaneGroup }).value.stickyKey).toEqual({ cookie: "uid", generate: true, maxAgeSeconds: 2592000 });
  });

  const cases: Array<[string, unknown, string, RegExp]> = [
    ["bad group name", base({ name: "Bad_Name" }), "/name", /lowercase/],
    ["name too long", base({ name: "a".repeat(64) }), "/name", /1-63/],
    ["duplicate lane", base({ lanes: [{ name: "c" }, { name: "c" }] }), "/lanes/1/name", /duplicate lane c/],
    ["lane named like the base", base({ lanes: [{ name: "base" }] }), "/lanes/0/name", /base lane/],
    ["weight over 100", base({ lanes: [{ name: "c", weight: 100.001 }] }), "/lanes/0/weight", /0 to 100|two decimals/],
    ["three decimals", base({ lanes: [{ name: "c", weight: 1.234 }] }), "/lanes/0/weight", /two decimals/],
    ["weights over 100 in sum", base({ lanes: [{ name: "c", weight: 60 }, { name: "d", weight: 60 }] }), "/lanes", /add up to 120/],
    ["unknown fallback", base({ lanes: [{ name: "c", fallback: "nope" }] }), "/lanes/0/fallback", /unknown lane nope/],
    ["fallback loop", base({ lanes: [{ name: "c", fallback: "d" }, { name: "d", fallback: "c" }] }), "/lanes/0/fallback", /loops/],
    ["unknown lane service", base({ lanes: [{ name: "c", services: ["zz"] }] }), "/lanes/0/services/0", /unknown service zz/],
    ["bad header name", base({ laneHeader: "bad header" }), "/laneHeader", /header name/],
    ["bad condition header", base({ lanes: [{ name: "c", match: [{ headers: { "a b": { exact: "1" } } }] }] }), "/lanes/0/match/0/headers/a b", /header name/],
    ["unknown field", base({ colour: "red" }), "/colour", /unknown field colour/],
    ["unknown nested field", base({ lanes: [{ name: "c", wieght: 5 }] }), "/lanes/0/wieght", /unknown field wieght/],
    ["host with port", base({ services: [{ name: "a", hosts: ["a:8080"] }] }), "/services/0/hosts/0", /without port/],
    ["default host taken", base({ services: [{ name: "b", hosts: ["a"] }, { name: "a" }] }), "/services/1/name", /default host a of service a is already a host of service b/],
    ["sticky max age over uint32", base({ stickyKey: { cookie: "u", generate: true, maxAgeSeconds: 2 ** 32 } }), "/stickyKey/maxAgeSeconds", /./],
    ["two string matches", base({ lanes: [{ name: "c", match: [{ headers: { a: { exact: "1", prefix: "2" } } }] }] }), "/lanes/0/match/0/headers/a", /exactly one/],
    ["empty block", base({ lanes: [{ name: "c", match: [{}] }] }), "/lanes/0/match/0", /at least one condition/],
    ["unknown os", base({ lanes: [{ name: "c", match: [{ os: ["BeOS"] }] }] }), "/lanes/0/match/0/os/0", /./],
    ["bad regex", base({ lanes: [{ name: "c", match: [{ cookies: { uid: { regex: "(a" } } }] }] }), "/lanes/0/match/0/cookies/uid/regex", /regex "\(a": invalid syntax/],
    ["regex with backreference", base({ lanes: [{ name: "c", match: [{ uri: { regex: "(a+)\\1" } }] }] }), "/lanes/0/match/0/uri/regex", /backreference/],
    ["regex with a flag group other than a leading (?i)", base({ lanes: [{ name: "c", match: [{ headers: { "user-agent": { regex: "(?is).*iphone.*" } } }] }] }), "/lanes/0/match/0/headers/user-agent/regex", /flag group \(\?is\) at 0 is not supported/],
    ["duplicate host", base({ services: [{ name: "a" }, { name: "b", hosts: ["A"] }] }), "/services/1/hosts/0", /already a host of service a/],
    ["generateTraceId not a boolean", base({ generateTraceId: "yes" }), "/generateTraceId", /boolean/],
    ["generateTraceId null", base({ generateTraceId: null }), "/generateTraceId", /boolean/],
    ["isolation not a mode", base({ isolation: "strong" }), "/isolation", /must be "permissive" or "strict"/],
    ["isolation not a string", base({ isolation: true }), "/isolation", /must be "permissive" or "strict"/],
    ["isolation case", base({ isolation: "Strict" }), "/isolation", /must be "permissive" or "strict"/],
    ["sticky key with both", base({ stickyKey: { header: "x", cookie: "y" } }), "/stickyKey", /exactly one of header, cookie/],
    ["protocol not one of http, grpc", base({ services: [{ name: "a" }, { name: "b", protocol: "h2" }] }), "/services/1/protocol", /must be "http" or "grpc"/],
  ];

  for (const [what, input, path, message] of cases) {
    it(`refuses ${what} at ${path || "/"}`, () => {
      const errors = errorsOf(input);
      const hit = errors.find((e) => e.path === path);
      expect(hit, JSON.stringify(errors)).toBeDefined();
      expect(hit!.message).toMatch(message);
    });
  }

  it("generateTraceId: default true, false kept; a stored group without it reads with the default", () => {
    expect((parseLaneGroup(base()) as { value: LaneGroup }).value.generateTraceId).toBe(true);
    expect((parseLaneGroup(base({ generateTraceId: false })) as { value: LaneGroup }).value.generateTraceId).toBe(false);
    const { generateTraceId: _, ...old } = (parseLaneGroup(base()) as { value: LaneGroup }).value;
    expect(storedLaneGroup(old as LaneGroup).generateTraceId).toBe(true);
    const off = (parseLaneGroup(base({ generateTraceId: false })) as { value: LaneGroup }).value;
    expect(storedLaneGroup(off)).toEqual(off); // a current group reads back as it was written
  });

  it("isolation: default permissive, strict kept; a stored group without it reads with the default", () => {
    expect((parseLaneGroup(base()) as { value: LaneGroup }).value.isolation).toBe("permissive");
    expect((parseLaneGroup(base({ isolation: "strict" })) as { value: LaneGroup }).value.isolation).toBe("strict");
    const { isolation: _, ...old } = (parseLaneGroup(base()) as { value: LaneGroup }).value;
    expect(storedLaneGroup(old as LaneGroup).isolation).toBe("permissive");
    const strict = (parseLaneGroup(base({ isolation: "strict" })) as { value: LaneGroup }).value;
    expect(storedLaneGroup(strict).isolation).toBe("strict");
  });

  it("a service's protocol: kept when given (http or grpc), absent otherwise, so groups without it read back unchanged", () => {
    const g = (parseLaneGroup(base({ services: [{ name: "a", protocol: "grpc" }, { name: "b" }, { name: "c", protocol: "http" }] })) as { value: LaneGroup }).value;
    expect(g.services.map((s) => s.protocol)).toEqual(["grpc", undefined, "http"]);
    expect(g.services[1]).not.toHaveProperty("protocol");
    expect(storedLaneGroup(g)).toEqual(g);
  });

  it("reports every problem at once", () => {
    const errors = errorsOf(base({ lanes: [{ name: "c", weight: 70, services: ["zz"] }, { name: "d", weight: 70, fallback: "nope" }] }));
    expect(errors.map((e) => e.path).sort()).toEqual(["/lanes", "/lanes/0/services/0", "/lanes/1/fallback"]);
  });

  it("cross-group rules: unique names, one group per service, hosts unique everywhere", () => {
    const a = (parseLaneGroup(base()) as { value: LaneGroup }).value;
    const b = (parseLaneGroup({ name: "h", services: [{ name: "a" }, { name: "c", hosts: ["b"] }] }) as { value: LaneGroup }).value;
    expect(validateLaneGroups([a, b])).toEqual([
      { path: "/1/services/0/name", message: "service a already belongs to lane group g" },
      { path: "/1/services/0/hosts/0", message: "host a already routes to g/a" },
      { path: "/1/services/1/hosts/0", message: "host b already routes to g/b" },
    ]);
    expect(validateLaneGroups([a, a])[0]).toEqual({ path: "/1/name", message: "duplicate lane group g" });
    // an edge path prefix selects one service, across groups too
    const p1 = (parseLaneGroup({ name: "p1", services: [{ name: "x", paths: ["/shop"] }] }) as { value: LaneGroup }).value;
    const p2 = (parseLaneGroup({ name: "p2", services: [{ name: "y", paths: ["/cart", "/shop"] }] }) as { value: LaneGroup }).value;
    expect(validateLaneGroups([p1, p2])).toEqual([{ path: "/1/services/0/paths/1", message: "path /shop already routes to p1/x" }]);
  });
});
