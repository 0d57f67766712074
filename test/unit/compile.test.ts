// Lane groups → RuleSet: determinism, the mapping the filter relies on, and regex → byte DFA.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { fromBinary } from "@bufbuild/protobuf";
import { ConditionKind, MatchOp, RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { compileRegex, compileRuleSet, CompileError, dfaMatches, RegexError } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";

const example = JSON.parse(readFileSync("test/fixtures/lanegroup-mock.json", "utf8"));
const parse = (g: unknown): LaneGroup => {
  const r = parseLaneGroup(g);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

/** The same object with its keys in reverse order, recursively. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversedKeys(x)]));
  return v;
}

describe("compileRuleSet", () => {
  it("DESIGN.md's example compiles and round-trips", () => {
    const { bytes, version, ruleSet } = compileRuleSet([parse(example)]);
    expect(version).toMatch(/^[0-9a-f]{16}$/);
    const back = fromBinary(RuleSetSchema, bytes);
    expect(back.version).toBe(version);
    expect(back).toEqual(ruleSet);
    const g = back.groups[0];
    expect(g.lanes.map((l) => l.name)).toEqual(["base", "canary"]);
    expect(g.lanes[0].services).toEqual(["mocka", "mockb", "mockc"]);
    expect(g.lanes[1]).toMatchObject({ services: ["mocka"], fallback: 0 });
    expect(g.overrideHeader).toBe("x-asm-prefer-tag");
    expect(g.services[0].hosts).toEqual(["mocka", "mocka.default.svc.cluster.local"]);
  });

  it("is deterministic: same groups, same bytes, whatever the key or group order", () => {
    const other = parse({ name: "aaa", services: [{ name: "x" }], lanes: [{ name: "l", services: ["x"], match: [{ headers: { b: { regex: "[0-9]+" }, a: { exact: "1" } }, method: ["post", "GET"] }] }] });
    const one = compileRuleSet([parse(example), other]);
    const two = compileRuleSet([parse(reversedKeys(example)), parse(reversedKeys({ name: "aaa", services: [{ name: "x" }], lanes: [{ name: "l", services: ["x"], match: [{ headers: { b: { regex: "[0-9]+" }, a: { exact: "1" } }, method: ["post", "GET"] }] }] }))].reverse());
    expect(Buffer.from(two.bytes).equals(Buffer.from(one.bytes))).toBe(true);
    expect(one.ruleSet.groups.map((g) => g.name)).toEqual(["aaa", "mock"]);
    const conds = one.ruleSet.groups[0].lanes[1].match[0].conditions;
    expect(conds.map((c) => [c.kind, c.name])).toEqual([[ConditionKind.HEADER, "a"], [ConditionKind.HEADER, "b"], [ConditionKind.METHOD, ""]]);
    expect(conds[2]).toMatchObject({ op: MatchOp.ANY_OF, values: ["GET", "POST"] });
    // a change in the rules changes the version
    const changed = compileRuleSet([parse({ ...example, traceHeader: "x-b3-traceid" }), other]);
    expect(changed.version).not.toBe(one.version);
  });

  it("weights become consecutive bucket ranges in lane order", () => {
    const g = parse({ name: "w", services: [{ name: "s" }], lanes: [
      { name: "a", weight: 10 }, { name: "b", weight: 20.5 }, { name: "c" }, { name: "d", weight: 0.01 },
    ] });
    const lanes = compileRuleSet([g]).ruleSet.groups[0].lanes;
    expect(lanes.map((l) => [l.name, l.bucketStart, l.bucketEnd])).toEqual([
      ["base", 0, 0], ["a", 0, 1000], ["b", 1000, 3050], ["c", 3050, 3050], ["d", 3050, 3051],
    ]);
  });

  it("fallbacks become lane indexes; regexes are shared", () => {
    const g = parse({ name: "f", services: [{ name: "s" }], lanes: [
      { name: "a", match: [{ cookies: { u: { regex: "1[0-9]{3}" } } }] },
      { name: "b", fallback: "a", match: [{ headers: { x: { regex: "1[0-9]{3}" } } }] },
    ] });
    const rs = compileRuleSet([g]).ruleSet;
    expect(rs.groups[0].lanes.map((l) => l.fallback)).toEqual([0, 0, 1]);
    expect(rs.dfas).toHaveLength(1);
  });

  it("refuses groups that conflict with each other", () => {
    const a = parse({ name: "a", services: [{ name: "s" }] });
    const b = parse({ name: "b", services: [{ name: "s" }] });
    expect(() => compileRuleSet([a, b])).toThrow(CompileError);
  });

  const compileErrors = (groups: LaneGroup[], opts = {}) => {
    try { compileRuleSet(groups, opts); } catch (e) {
      expect(e).toBeInstanceOf(CompileError);
      return (e as CompileError).errors;
    }
    throw new Error("expected a CompileError");
  };

  it("validates each group again, with paths prefixed by the group's index", () => {
    const good = parse({ name: "a", services: [{ name: "s" }] });
    const bad = { ...parse({ name: "b", services: [{ name: "t" }] }), lanes: [{ name: "c", services: ["zz"], fallback: "base", weight: 120, match: [] }] };
    expect(compileErrors([good, bad])).toEqual(expect.arrayContaining([
      { path: "/1/lanes/0/weight", message: "must be from 0 to 100" },
      { path: "/1/lanes/0/services/0", message: "unknown service zz" },
    ]));
  });

  it("regexes are checked under the compilation's state cap", () => {
    const g = parse({ name: "r", services: [{ name: "s" }], lanes: [{ name: "c", match: [{ headers: { x: { regex: "(a|b)*a(a|b){3}" } } }] }] });
    expect(compileRuleSet([g]).ruleSet.dfas[0].stateCount).toBe(16);
    const errors = compileErrors([g], { stateCap: 8 });
    expect(errors).toHaveLength(1);
    expect(errors[0].path).toBe("/0/lanes/0/match/0/headers/x/regex");
    expect(errors[0].message).toMatch(/16 states, over the cap of 8/);
    // and the model accepts a larger cap than the default
    const big = { name: "r", services: [{ name: "s" }], lanes: [{ name: "c", match: [{ uri: { regex: "(a|b)*a(a|b){10}" } }] }] };
    expect(parseLaneGroup(big).ok).toBe(false);
    const r = parseLaneGroup(big, { stateCap: 4096 });
    expect(r.ok).toBe(true);
    expect(compileRuleSet([(r as { value: LaneGroup }).value], { stateCap: 4096 }).ruleSet.dfas[0].stateCount).toBe(2048);
  });

  it("generateTraceId compiles into Group.generate_trace_id (default true); no required feature, counter keys untouched", () => {
    const on = compileRuleSet([parse(example)]);
    expect(on.ruleSet.groups[0].generateTraceId).toBe(true);
    expect(on.ruleSet.requiredFeatures).toEqual([]);
    const off = compileRuleSet([parse({ ...example, generateTraceId: false })]);
    expect(off.ruleSet.groups[0].generateTraceId).toBe(false);
    expect(off.version).not.toBe(on.version);
    // A group given without the field (stored before it existed) compiles with the default.
    const { generateTraceId: _, ...old } = parse(example);
    expect(compileRuleSet([old as LaneGroup]).version).toBe(on.version);
  });

  it("isolation compiles into Group.strict_isolation; a strict group, and only one, requires instance-lane", () => {
    const permissive = compileRuleSet([parse(example)]);
    expect(permissive.ruleSet.groups[0].strictIsolation).toBe(false);
    expect(permissive.ruleSet.requiredFeatures).toEqual([]);
    const strict = compileRuleSet([parse({ ...example, isolation: "strict" })]);
    expect(strict.ruleSet.groups[0].strictIsolation).toBe(true);
    expect(strict.ruleSet.requiredFeatures).toEqual(["instance-lane"]);
    expect(strict.version).not.toBe(permissive.version);
    // Merged with the server's own required features, sorted, once.
    const both = compileRuleSet([parse({ ...example, isolation: "strict" })], { requiredFeatures: ["lanes/v1", "instance-lane"] });
    expect(both.ruleSet.requiredFeatures).toEqual(["instance-lane", "lanes/v1"]);
    // One strict group among permissive ones is enough.
    const other = parse({ name: "other", services: [{ name: "zz" }], lanes: [{ name: "c", services: ["zz"] }] });
    expect(compileRuleSet([parse(example), { ...other, isolation: "strict" }]).ruleSet.requiredFeatures).toEqual(["instance-lane"]);
    expect(compileRuleSet([parse(example), other]).ruleSet.requiredFeatures).toEqual([]);
    // A group given without the field (stored before it existed) compiles as permissive: same bytes.
    const { isolation: _, ...old } = parse(example);
    expect(compileRuleSet([old as LaneGroup]).version).toBe(permissive.version);
  });

  it("required features are sorted and deduplicated", () => {
    const { ruleSet } = compileRuleSet([parse(example)], { requiredFeatures: ["match/dfa", "lanes/v1", "match/dfa"] });
    expect(ruleSet.requiredFeatures).toEqual(["lanes/v1", "match/dfa"]);
  });

  it("no groups: an empty RuleSet with a version", () => {
    const { ruleSet, version } = compileRuleSet([]);
    expect(ruleSet.groups).toEqual([]);
    expect(version).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe("regex: a leading (?i)", () => {
  const m = (p: string, v: string) => dfaMatches(compileRegex(p), new TextEncoder().encode(v));

  it("makes the whole pattern case-insensitive by ASCII case folding, agreeing with JS RegExp's i flag", () => {
    const p = "(?i).*(iphone|ipad)[ ;].*";
    for (const v of ["Mozilla/5.0 (iPhone; CPU)", "x IPAD;", "iphone;", "IPHONE ", "android;", "iphone"]) {
      expect(m(p, v), v).toBe(/^(?:.*(iphone|ipad)[ ;].*)$/i.test(v));
    }
    expect(m("(?i)^abc$", "AbC")).toBe(true);
    expect(m("(?i)[a-c]+", "ABCabc")).toBe(true);
    expect(m("(?i)[^a]", "A")).toBe(false);
    expect(m("abc", "ABC")).toBe(false); // without it, case still matters
  });

  it("folds no ASCII letter onto a non-ASCII byte, and no non-ASCII byte onto a letter", () => {
    // "K" (KELVIN SIGN, UTF-8 e2 84 aa) is not "k"; "ſ" (c5 bf) is not "s".
    expect(m("(?i)k", "\u212a")).toBe(false);
    expect(m("(?i)s", "\u017f")).toBe(false);
    expect(m("(?i)..", "\u017f")).toBe(true); // two bytes, as without the flag
  });

  for (const [p, msg] of [
    ["(?i:abc)", /flag group \(\?i:…\) at 0 is not supported: the only inline flag supported is a leading \(\?i\)/],
    ["(?is)abc", /flag group \(\?is\) at 0 is not supported/],
    ["(?s).", /flag group \(\?s\) at 0 is not supported/],
    ["(?-i)a", /flag group \(\?-i\) at 0/],
    ["a(?i)bc", /flag group \(\?i\) at 1 is not supported: \(\?i\) is only supported at the start of the pattern/],
    ["(?i)x(?m)y", /flag group \(\?m\) at 5/],
  ] as const) {
    it(`refuses ${p}, naming the flag`, () => {
      expect(() => compileRegex(p)).toThrow(msg);
    });
  }

  it("leaves what is not a flag group alone: classes, escapes, (?:, named groups", () => {
    expect(m("[(?i)]x", "?x")).toBe(true);
    expect(m("(?:ab)+", "abab")).toBe(true);
    expect(m("(?<n>a)b", "ab")).toBe(true);
    // An escaped "(" opens no group: "\(?i)" is "(" optional, then "i)" — a syntax error, not a flag.
    expect(() => compileRegex("\\(?i)")).toThrow(/invalid syntax/);
    expect(() => compileRegex("\\\\(?i)")).toThrow(/flag group \(\?i\) at 2/);
  });
});

describe("regex → byte DFA", () => {
  const bytesOf = (s: string) => [...new TextEncoder().encode(s)];
  const patterns = ["1[0-9]{3}", "(foo|bar)+baz", "[a-z]+@example\\.com", ".*chrome.*", "v[0-9]+(\\.[0-9]+)*", "[^/]+/x",
    "a|b|", "(ab)*", "\\d{2,4}-\\w+", "^exact$", "x?y?z?", "[A-Fa-f0-9]{8}"];
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const alphabet = "abcfhorz0123456789.@/-_xyzAF ";

  for (const p of patterns) {
    it(`agrees with JS RegExp full match: ${p}`, () => {
      const dfa = compileRegex(p);
      const js = new RegExp("^(?:" + p.replace(/^\^/, "").replace(/\$$/, "") + ")$");
      const samples = ["", "1234", "foobaz", "barfoobaz", "me@example.com", "xxchromexx", "v1.2.3", "ab/x", "ab", "12-ab", "exact", "xyz", "DEADbeef"];
      for (let i = 0; i < 2000; i++) samples.push(Array.from({ length: rnd(12) }, () => alphabet[rnd(alphabet.length)]).join(""));
      let matched = 0;
      for (const s of samples) {
        const want = js.test(s);
        if (want) matched++;
        expect(dfaMatches(dfa, new TextEncoder().encode(s)), `${p} on ${JSON.stringify(s)}`).toBe(want);
      }
      expect(matched).toBeGreaterThan(0);
    });
  }

  it("tables are compact and well-formed", () => {
    const d = compileRegex("1[0-9]{3}");
    expect(d.byteClasses).toHaveLength(256);
    expect(d.stateCount).toBe(5);
    expect(d.transitions).toHaveLength(d.stateCount * d.classCount * 2);
    expect(d.accepting).toHaveLength(d.stateCount);
    expect(d.classCount).toBeLessThanOrEqual(3); // "1", other digits, everything else
  });

  // Bytes as Latin-1 characters: for patterns without \\s / \\S, JS RegExp is then an exact oracle
  // of the byte semantics (`.` and negated classes take any byte 0x80-0xFF, ASCII sets none).
  const bytePatterns: Array<[string, number[][]]> = [
    ["[^/]+/x", [[0xc3, 0xa9, 0x2f, 0x78]]], [".*chrome.*", [[0xff, ...bytesOf("chrome"), 0x80]]], ["a.c", [[0x61, 0xa0, 0x63]]],
    ["[^a-z]*", [[0x80, 0x30]]], ["(x|[^x])y", [[0xc3, 0x79]]], ["\\W\\d\\D", [[0xa9, 0x30, 0xff]]], ["[^\\x00-\\x7f]+", [[0xc3, 0xa9]]],
  ];
  for (const [p, positives] of bytePatterns) {
    it(`agrees with JS RegExp on Latin-1 bytes: ${p}`, () => {
      const dfa = compileRegex(p);
      const js = new RegExp("^(?:" + p + ")$");
      const pool = [0x00, 0x0a, 0x2f, 0x30, 0x5f, 0x61, 0x62, 0x63, 0x78, 0x79, 0x7f, 0x80, 0xa0, 0xc3, 0xa9, 0xff, ...bytesOf("chrome")];
      let matched = 0;
      for (let i = 0; i < 3000; i++) {
        const input = i < positives.length ? Uint8Array.from(positives[i]) : Uint8Array.from({ length: rnd(9) }, () => pool[rnd(pool.length)]);
        const want = js.test(String.fromCharCode(...input));
        if (want) matched++;
        expect(dfaMatches(dfa, input), `${p} on ${Buffer.from(input).toString("hex")}`).toBe(want);
      }
      expect(matched).toBeGreaterThan(0);
    });
  }

  it("\\s, \\w, \\d are ASCII; their negations take every non-ASCII byte", () => {
    const nbsp = new Uint8Array([0xa0]);
    expect(dfaMatches(compileRegex("\\s"), nbsp)).toBe(false);
    expect(dfaMatches(compileRegex("\\S"), nbsp)).toBe(true);
    expect(dfaMatches(compileRegex("\\s"), new TextEncoder().encode("\t"))).toBe(true);
    expect(dfaMatches(compileRegex("\\w+"), new TextEncoder().encode("é"))).toBe(false);
    expect(dfaMatches(compileRegex("\\W+"), new TextEncoder().encode("é"))).toBe(true);
    expect(dfaMatches(compileRegex(".."), new TextEncoder().encode("é"))).toBe(true); // two bytes
  });

  it("the dead state is not in the table; a regex matching nothing is one rejecting state", () => {
    const abc = compileRegex("abc");
    expect(abc.stateCount).toBe(4);
    expect([...abc.accepting]).toEqual([0, 0, 0, 1]);
    const none = compileRegex("a[]");
    expect(none.stateCount).toBe(1);
    expect(none.classCount).toBe(1);
    expect([...none.transitions]).toEqual([0xff, 0xff]);
    expect([...none.accepting]).toEqual([0]);
    expect(dfaMatches(none, new Uint8Array())).toBe(false);
  });

  it("states are numbered breadth-first, classes by first byte", () => {
    const d = compileRegex("b|ac");
    // bytes: 0x00.. -> class 0 (reject everywhere), 'a' -> 1, 'b' -> 2, 'c' -> 3
    expect([d.byteClasses[0], d.byteClasses[0x61], d.byteClasses[0x62], d.byteClasses[0x63], d.byteClasses[0xff]]).toEqual([0, 1, 2, 3, 0]);
    const next = (s: number, c: number) => d.transitions[(s * d.classCount + c) * 2] | (d.transitions[(s * d.classCount + c) * 2 + 1] << 8);
    expect(d.stateCount).toBe(3);
    expect([next(0, 0), next(0, 1), next(0, 2), next(0, 3)]).toEqual([0xffff, 1, 2, 0xffff]); // 'a' -> 1, 'b' -> 2 (accepting)
    expect(next(1, 3)).toBe(2);
    expect([...d.accepting]).toEqual([0, 0, 1]);
  });

  it("`.` matches any single byte, including non-ASCII ones", () => {
    expect(dfaMatches(compileRegex("a.c"), new Uint8Array([0x61, 0xff, 0x63]))).toBe(true);
  });

  const refused: Array<[string, RegExp, number?]> = [
    ["(a+)\\1", /backreference/],
    ["(?=a)a", /assertion/],
    ["\\bfoo", /assertion/],
    ["a^b", /assertion/],
    ["(", /invalid syntax/],
    ["ü+", /non-ASCII/],
    ["(a|b)*a(a|b){12}", /exceeds 1024 states|over the cap of 1024/],
    ["(a|b)*a(a|b){3}", /16 states, over the cap of 8/, 8],
    ["(a)\\1", /backreference/],
    ["a\\u00e9", /non-ASCII/],
    ["\\xff", /non-ASCII/],
    ["a\\Z", /invalid syntax/],
    ["a$|b", /assertion/],
    ["(?<=a)b", /assertion/],
    ["a{2}{3}", /invalid syntax/],
  ];
  for (const [p, why, cap] of refused) {
    it(`refuses ${p} with a reason`, () => {
      let err: unknown;
      try { compileRegex(p, cap ? { stateCap: cap } : {}); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(RegexError);
      expect((err as Error).message).toContain(JSON.stringify(p));
      expect((err as Error).message).toMatch(why);
    });
  }
});
