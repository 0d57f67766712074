// lane/destination.ts (which service a request goes to) and the lane route fallback, called directly
// through the test entry with RuleSets compiled by the real control-plane compiler.
import { beforeAll, describe, expect, it } from "vitest";
import type { RuleSet } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { destinationOf, LaneProbe, unpack } from "../support/lane-probe.js";
import { mockGroup } from "../support/filter.js";

let probe: LaneProbe;
let rs: RuleSet;

const shop = {
  name: "alpha",
  services: [{ name: "shop", hosts: ["shop.example.com"], paths: ["/shop", "/mock/deep"] }, { name: "cart", paths: ["/"] }],
  lanes: [],
};
// Lanes: canary has mocka, canary2 has mockb and falls back to canary.
const mock = mockGroup({
  lanes: [
    { name: "canary", services: ["mocka"], fallback: "base" },
    { name: "canary2", services: ["mockb"], fallback: "canary" },
  ],
});

beforeAll(async () => {
  probe = await LaneProbe.load();
  rs = probe.loadGroups([mock, shop]);
});

const of = (name: string) => destinationOf(rs, name);
const service = (s: string) => unpack(probe.x.destService(...probe.put(s)));
const host = (h: string) => unpack(probe.x.destHost(...probe.put(h)));
const path = (p: string) => unpack(probe.x.destPath(...probe.put(p)));

function find(headers: Array<[string, string]>, meta: Array<[string, string]>, edge: boolean) {
  expect(probe.request(headers)).toBe(true);
  expect(probe.meta(meta)).toBe(true);
  return unpack(probe.x.destFind(edge ? 1 : 0));
}

describe("destination lookup", () => {
  it("packs group and service indices of the RuleSet", () => {
    // the compiler orders groups by name, so mock is group 1 here: the packing must carry it
    expect(of("mocka").group).toBe(1);
    expect(service("mocka")).toEqual(of("mocka"));
    expect(service("mockc")).toEqual({ group: 1, service: 2 });
    expect(service("cart")).toEqual(of("cart"));
  });

  it("finds a service by its exact name only", () => {
    expect(service("MockA")).toBeNull();
    expect(service("mock")).toBeNull();
    expect(service("")).toBeNull();
  });

  it("matches hosts ignoring the request's case, the service name being the default host", () => {
    expect(host("mocka.default.svc.cluster.local")).toEqual(of("mocka"));
    expect(host("MOCKA")).toEqual(of("mocka"));
    expect(host("mockb")).toEqual(of("mockb"));
    expect(host("shop.example.com")).toEqual(of("shop"));
    expect(host("shop")).toBeNull(); // shop names its hosts: no default
    expect(host("mocka:80")).toBeNull(); // the port is the request view's to strip
  });

  it("takes the longest path prefix", () => {
    expect(path("/mock/x")).toEqual(of("mocka"));
    expect(path("/mock/deeper")).toEqual(of("shop"));
    expect(path("/shopping")).toEqual(of("shop"));
    expect(path("/elsewhere")).toEqual(of("cart"));
  });

  it("uses the route metadata's service first", () => {
    expect(find([[":authority", "mocka"]], [["service", "mockc"], ["lane", "base"]], false)).toEqual(of("mockc"));
    // a metadata service no group knows: the host decides
    expect(find([[":authority", "mocka"]], [["service", "unknown"]], false)).toEqual(of("mocka"));
  });

  it("matches the :authority (else Host) without its port", () => {
    expect(find([[":authority", "MockA.default.svc.cluster.local:8080"]], [], false)).toEqual(of("mocka"));
    expect(find([["host", "mockb:80"]], [], false)).toEqual(of("mockb"));
    probe.request([[":authority", "[::1]:8080"]]);
    probe.x.requestHost();
    expect(probe.outText()).toBe("[::1]");
  });

  it("uses path prefixes at the edge only", () => {
    expect(find([[":path", "/mock/x?q=1"], [":authority", "gateway.example"]], [], true)).toEqual(of("mocka"));
    expect(find([[":path", "/mock/x?q=1"], [":authority", "gateway.example"]], [], false)).toBeNull();
    // the query string is not part of the path
    expect(find([[":path", "/x?/mock"], [":authority", "gateway.example"]], [], true)).toEqual(of("cart"));
  });

  it("finds no destination when nothing matches", () => {
    expect(find([[":path", "/mock"], [":authority", "other.example"]], [["lane", "canary"]], false)).toBeNull();
    expect(find([], [], true)).toBeNull();
  });

  it("reads the route metadata's service and lane, and whether it serves a lane", () => {
    expect(probe.meta([["lane", "canary"], ["other", "x"], ["service", "mocka"]])).toBe(true);
    probe.x.metaFields();
    expect(probe.outText()).toBe("mocka\ncanary");
    expect(probe.x.metaServesLane(...probe.put("canary"))).toBe(1);
    expect(probe.x.metaServesLane(...probe.put("base"))).toBe(0);
    expect(probe.meta([["service", "mocka"]])).toBe(true);
    expect(probe.x.metaServesLane(...probe.put("canary"))).toBe(0);
  });
});

describe("route fallback", () => {
  const lane = (name: string) => ["base", "canary", "canary2"].indexOf(name);
  const svc = (name: string) => of(name).service;
  const route = (l: string, s: string) => probe.x.route(of("mocka").group, lane(l), svc(s));

  it("keeps the lane when it has the service", () => {
    expect(route("canary", "mocka")).toBe(lane("canary"));
    expect(route("canary2", "mockb")).toBe(lane("canary2"));
  });

  it("follows the fallback chain down to base", () => {
    expect(route("canary2", "mocka")).toBe(lane("canary"));
    expect(route("canary2", "mockc")).toBe(lane("base"));
    expect(route("canary", "mockb")).toBe(lane("base"));
  });

  it("routes base to base", () => {
    for (const s of ["mocka", "mockb", "mockc"]) expect(route("base", s)).toBe(0);
  });

  it("lane order matches the compiled RuleSet", () => {
    expect(rs.groups[of("mocka").group].lanes.map((l) => l.name)).toEqual(["base", "canary", "canary2"]);
  });
});
