// More of the lane group → RuleSet mapping: every condition kind, group fields, byte semantics of
// DFAs, and validation that reports structural and cross-field problems together.
import { describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import {
  ConditionKind, MatchOp, OverrideTrust, RuleSetSchema, UserAgentBrowser, UserAgentOs,
} from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { compileRegex, compileRuleSet, dfaMatches, RegexError } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";

const parse = (g: unknown): LaneGroup => {
  const r = parseLaneGroup(g);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const bytes = (s: string) => new TextEncoder().encode(s);

describe("RuleSet mapping", () => {
  const group = parse({
    name: "shop",
    services: [{ name: "web", hosts: ["Web.Example.COM"], paths: ["/shop"] }, { name: "api" }],
    laneHeader: "X-Lane", routeHeader: "X-Route", overrideHeader: "X-Prefer", overrideTrust: "signed", trustIncoming: true,
    traceHeader: "TraceParent", generateTraceId: false, isolation: "strict", stickySalt: "salt", stickyKey: { cookie: "uid", generate: true },
    lanes: [
      { name: "gray", services: ["web"], weight: 5, match: [{
        browser: ["Edge", "IE"], os: ["iOS", "Linux"], method: ["get"], uri: { regex: "/api/.*" },
        queryParams: { z: { present: true }, a: { absent: true } }, cookies: { Uid: { prefix: "1" } },
        headers: { "X-B": { exact: "é" }, "x-a": { regex: "/api/.*" } },
      }, { uri: { exact: "/x" } }] },
      { name: "blue", services: ["api"], fallback: "gray" },
    ],
  });

  it("maps group fields, services and lanes", () => {
    const { ruleSet, bytes: out, version } = compileRuleSet([group], { requiredFeatures: ["regex"] });
    expect(fromBinary(RuleSetSchema, out)).toEqual(ruleSet);
    expect(ruleSet.version).toBe(version);
    expect(ruleSet.requiredFeatures).toEqual(["instance-lane", "regex"]) // a strict group requires instance-lane;
    const g = ruleSet.groups[0];
    expect(g).toMatchObject({
      name: "shop", laneHeader: "x-lane", routeHeader: "x-route", overrideHeader: "x-prefer",
      overrideTrust: OverrideTrust.SIGNED, trustIncoming: true, traceHeader: "traceparent", generateTraceId: false, strictIsolation: true, stickySalt: "salt",
      stickyKey: { header: "", cookie: "uid", generate: true, maxAgeSeconds: 2592000 },
    });
    expect(g.services.map((s) => [s.name, s.hosts, s.paths])).toEqual([["web", ["web.example.com"], ["/shop"]], ["api", ["api"], []]]);
    expect(g.lanes.map((l) => [l.name, l.services, l.fallback, l.bucketStart, l.bucketEnd])).toEqual([
      ["base", ["web", "api"], 0, 0, 0], ["gray", ["web"], 0, 0, 500], ["blue", ["api"], 1, 500, 500],
    ]);
  });

  it("orders and encodes every condition kind", () => {
    const { ruleSet } = compileRuleSet([group]);
    const [first, second] = ruleSet.groups[0].lanes[1].match;
    expect(first.conditions.map((c) => [c.kind, c.name, c.op])).toEqual([
      [ConditionKind.HEADER, "x-a", MatchOp.REGEX],
      [ConditionKind.HEADER, "x-b", MatchOp.EXACT],
      [ConditionKind.COOKIE, "Uid", MatchOp.PREFIX],
      [ConditionKind.QUERY, "a", MatchOp.ABSENT],
      [ConditionKind.QUERY, "z", MatchOp.PRESENT],
      [ConditionKind.URI, "", MatchOp.REGEX],
      [ConditionKind.METHOD, "", MatchOp.ANY_OF],
      [ConditionKind.OS, "", MatchOp.ANY_OF],
      [ConditionKind.BROWSER, "", MatchOp.ANY_OF],
    ]);
    expect(first.conditions[1].value).toEqual(bytes("é"));
    expect(first.conditions[2].value).toEqual(bytes("1"));
    expect(first.conditions[0].dfa).toBe(0);
    expect(first.conditions[5].dfa).toBe(0); // same source, one DFA
    expect(ruleSet.dfas.map((d) => d.source)).toEqual(["/api/.*"]);
    expect(first.conditions[6].values).toEqual(["GET"]);
    expect(first.conditions[7].classes).toBe(UserAgentOs.IOS | UserAgentOs.LINUX);
    expect(first.conditions[8].classes).toBe(UserAgentBrowser.EDGE | UserAgentBrowser.IE);
    expect(second.conditions).toHaveLength(1);
    expect(second.conditions[0]).toMatchObject({ kind: ConditionKind.URI, op: MatchOp.EXACT, value: bytes("/x") });
  });

  it("defaults: no override header, header sticky key lowercased, trust any", () => {
    const g = compileRuleSet([parse({ name: "d", services: [{ name: "s" }], overrideHeader: undefined, stickyKey: { header: "X-User" } })]).ruleSet.groups[0];
    expect(g).toMatchObject({ overrideHeader: "", overrideTrust: OverrideTrust.ANY, stickySalt: "d", traceHeader: "x-request-id",
      stickyKey: { header: "x-user", cookie: "", generate: false, maxAgeSeconds: 0 } });
    expect(g.lanes).toHaveLength(1);
  });
});

describe("byte DFAs", () => {
  it("negated classes and `.` match any byte but what they exclude", () => {
    const d = compileRegex("[^/]+/x");
    expect(dfaMatches(d, new Uint8Array([0xc3, 0xa9, 0x2f, 0x78]))).toBe(true);
    expect(dfaMatches(d, bytes("a/b/x"))).toBe(false);
    expect(dfaMatches(compileRegex(".*"), new Uint8Array([0, 0x80, 0xff]))).toBe(true);
  });

  it("anchors at the ends are stripped; numbering is deterministic", () => {
    const a = compileRegex("^ab*$"), b = compileRegex("ab*");
    expect([a.stateCount, a.classCount, a.transitions, a.accepting, a.byteClasses]).toEqual([b.stateCount, b.classCount, b.transitions, b.accepting, b.byteClasses]);
    expect(a.byteClasses[0]).toBe(0);
    expect(dfaMatches(a, bytes("abbb"))).toBe(true);
  });

  it("non-ASCII characters are refused, also as escapes", () => {
    expect(() => compileRegex("a\\u0100")).toThrow(/non-ASCII/);
  });

  for (const [p, why] of [["(a)\\1", /backreference/], ["(?=a)", /assertion/], ["(?<!a)b", /assertion/], ["a$b", /assertion/], ["日本", /non-ASCII/], ["[a-", /invalid syntax/]] as const) {
    it(`refuses ${p}`, () => {
      expect(() => compileRegex(p)).toThrow(RegexError);
      expect(() => compileRegex(p)).toThrow(why);
    });
  }

  it("the cap message says the count and the cap", () => {
    expect(() => compileRegex("(a|b)*a(a|b){12}")).toThrow(/8192 states, over the cap of 1024/);
  });
});

describe("validation reports every problem at once", () => {
  it("structural and cross-field problems together", () => {
    const r = parseLaneGroup({ name: "g", services: [{ name: "a" }, { name: "a", hosts: ["x"] }], lanes: [
      { name: "Bad", weight: 1.234 }, { name: "c", weight: 60, fallback: "nope", services: ["zz"] }, { name: "c", weight: 50 },
      { name: "e", match: [{ headers: { h: { regex: "(" } } }] },
    ] });
    expect(r.ok).toBe(false);
    const paths = (r as { errors: Array<{ path: string }> }).errors.map((e) => e.path).sort();
    expect(paths).toEqual([
      "/lanes", "/lanes/0/name", "/lanes/0/weight", "/lanes/1/fallback", "/lanes/1/services/0", "/lanes/2/name",
      "/lanes/3/match/0/headers/h/regex", "/services/1/name",
    ]);
  });

  it("stickyKey shapes", () => {
    expect(parseLaneGroup({ name: "g", services: [{ name: "a" }], stickyKey: { cookie: "u", generate: true, maxAgeSeconds: 60 } })).toMatchObject({ ok: true, value: { stickyKey: { maxAgeSeconds: 60 } } });
    expect(parseLaneGroup({ name: "g", services: [{ name: "a" }], stickyKey: { cookie: "u" } })).toMatchObject({ ok: true, value: { stickyKey: { cookie: "u" } } });
    expect(parseLaneGroup({ name: "g", services: [{ name: "a" }], stickyKey: { header: "bad header" } })).toMatchObject({ ok: false });
    expect(parseLaneGroup({ name: "g", services: [{ name: "a" }], overrideTrust: "nobody" })).toMatchObject({ ok: false, errors: [{ path: "/overrideTrust" }] });
  });
});
