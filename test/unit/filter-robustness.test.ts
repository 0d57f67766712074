// Bad input never traps and lands on base; bad RuleSets and configurations are refused whole and
// the last good rules keep routing.
import { describe, expect, it } from "vitest";
import { base64, compileGroups, mockGroup, newFilter, routeTo } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";

const toMocka = routeTo("mocka");

describe("bad requests", () => {
  it("a 16 KB cookie", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    const big = "x".repeat(16 * 1024);
    expect(f.decide({ cookie: `junk=${big}; uid=1234` }, routeTo("db")).lane).toBe("dev"); // still parsed past it
    expect(f.decide({ cookie: `uid=${big}` }, routeTo("db")).lane).toBe("base");
    expect(f.decide({ "x-user-id": big }, routeTo("db")).lane).toMatch(/^(base|canary)$/);
  });

  it("header blocks larger than the 64 KB arena for host data: decided, freed, and the arena serves the next request", async () => {
    const f = await newFilter({ groups: [shopGroup()] });
    const big = "x".repeat(80 * 1024);
    for (let i = 0; i < 50; i++) expect(f.decide({ cookie: `junk=${big}; uid=1234` }, routeTo("db")).lane).toBe("dev");
    const after50 = f.vm.memoryBytes();
    for (let i = 0; i < 200; i++) expect(f.decide({ cookie: `junk=${big}; uid=1234` }, routeTo("db")).lane).toBe("dev");
    expect(f.vm.memoryBytes()).toBe(after50); // heap blocks of the big maps are freed
    expect(f.decide({ cookie: "uid=1234" }, routeTo("db")).lane).toBe("dev");
  });

  it("300 headers", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    const headers: Array<[string, string]> = [];
    for (let i = 0; i < 300; i++) headers.push([`x-filler-${i}`, `value-${i}`]);
    headers.push(["x-asm-prefer-tag", "canary"]);
    const r = f.decide(headers, toMocka);
    expect(r.lane).toBe("canary");
    expect(r.stream.requestHeaders.length).toBeGreaterThanOrEqual(303);
  });

  it("invalid UTF-8 in names and values", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    const bad = new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]);
    const r = f.decide([["x-asm-prefer-tag", bad], ["my-request-id", bad], ["x-user-id", bad], ["cookie", bad], [":path", bad]], toMocka);
    expect(r.lane).toBe("base");
    expect(f.decide([["x-asm-prefer-tag", "canary"], ["grayrelease", bad]], toMocka).lane).toBe("canary");
  });

  it("empty values", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    const r = f.decide({ "x-asm-prefer-tag": "", "x-graylane-lane": "", baggage: "", "my-request-id": "", "x-user-id": "", cookie: "", ":path": "" }, toMocka);
    expect(r.lane).toBe("base");
    expect(r.route).toBe("base");
  });

  it("an override naming an unknown lane lands on base", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    expect(f.decide({ "x-asm-prefer-tag": "canary2" }, toMocka).lane).toBe("base");
    expect(f.decide({ "x-asm-prefer-tag": "CANARY" }, toMocka).lane).toBe("base");
  });

  it("odd baggage and cookies do not confuse the parsers", async () => {
    const f = await newFilter({ groups: [mockGroup()] });
    expect(f.decide({ baggage: ",,,graylane,=,graylanes=canary" }, toMocka).lane).toBe("base");
    expect(f.decide({ baggage: "graylane=canary" }, toMocka).lane).toBe("canary");
    expect(f.decide({ cookie: ";;=;uid" }, toMocka).lane).toBe("base");
  });
});

describe("bad RuleSets and configurations", () => {
  const good = compileGroups([mockGroup()]);

  async function configured() {
    const f = await newFilter({ groups: [mockGroup()] });
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, toMocka).lane).toBe("canary");
    return f;
  }

  function stillRoutes(f: Awaited<ReturnType<typeof configured>>) {
    expect(f.vm.failed).toBe(false);
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, toMocka).lane).toBe("canary");
  }

  it("garbage bytes are refused, logged, counted, and the last good RuleSet keeps routing", async () => {
    const f = await configured();
    const garbage = new Uint8Array(512).map((_, i) => (i * 7919 + 13) & 0xff);
    expect(f.vm.configure(JSON.stringify({ ruleSet: base64(garbage) }))).toBe(false);
    expect(f.vm.logsAtLeast(4).join("\n")).toMatch(/RuleSet from plugin configuration refused, keeping [0-9a-f]{16}: malformed RuleSet/);
    expect(f.vm.metric("graylane.ruleset_rejected")?.value).toBe(1n);
    stillRoutes(f);
  });

  it("every truncation of a valid RuleSet is refused or applied, never a trap", async () => {
    const f = await configured();
    for (let n = 0; n < good.bytes.length; n++) {
      f.vm.configure(JSON.stringify({ ruleSet: base64(good.bytes.subarray(0, n)) }));
      expect(f.vm.failed).toBe(false);
    }
  });

  it("random corruptions never trap (2,000 mutants)", async () => {
    const f = await configured();
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const m = good.bytes.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let j = 0; j < flips; j++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
      if (!f.vm.configure(JSON.stringify({ ruleSet: base64(m) }))) refused++;
      expect(f.vm.failed).toBe(false);
      // whatever was applied, a request still decides without trapping
      f.decide({ "x-asm-prefer-tag": "canary", cookie: "uid=1", ":path": "/mock?a=b" }, toMocka);
    }
    expect(refused).toBeGreaterThan(100);
  });

  it("semantically invalid RuleSets are refused with the path of the problem", async () => {
    const { fromBinary, toBinary } = await import("@bufbuild/protobuf");
    const { RuleSetSchema } = await import("../../control-plane/src/generated/graylane/v1/rules_pb.js");
    const f = await configured();
    const bad = fromBinary(RuleSetSchema, good.bytes);
    bad.groups[0].lanes[1].fallback = 9;
    expect(f.vm.configure(JSON.stringify({ ruleSet: base64(toBinary(RuleSetSchema, bad)) }))).toBe(false);
    expect(f.vm.logsAtLeast(4).join("\n")).toContain("groups[0].lanes[1].fallback: 9 out of range");
    const loop = fromBinary(RuleSetSchema, good.bytes);
    loop.groups[0].lanes.push({ ...loop.groups[0].lanes[1], name: "x", fallback: 2 });
    loop.groups[0].lanes[1].fallback = 2;
    expect(f.vm.configure(JSON.stringify({ ruleSet: base64(toBinary(RuleSetSchema, loop)) }))).toBe(false);
    expect(f.vm.logsAtLeast(4).join("\n")).toContain("fallback: loop");
    const feature = fromBinary(RuleSetSchema, good.bytes);
    feature.requiredFeatures.push("time-travel/v9");
    expect(f.vm.configure(JSON.stringify({ ruleSet: base64(toBinary(RuleSetSchema, feature)) }))).toBe(false);
    expect(f.vm.logsAtLeast(4).join("\n")).toContain("unsupported required feature time-travel/v9");
    stillRoutes(f);
  });

  it("a bad plugin configuration is refused with a message naming the problem", async () => {
    const f = await configured();
    const cases: Array<[string, string]> = [
      ["{", "invalid JSON"],
      ["[]", "must be a JSON object"],
      [`{"edeg": true}`, "edeg: unknown key"],
      [`{"edge": "yes"}`, "edge: want true or false"],
      [`{"traceMemory": {"slots": 0}}`, "traceMemory.slots: want a whole number"],
      [`{"reportIntervalMs": 1.5}`, "want a whole number"],
      [`{"ruleSet": "***"}`, "ruleSet: not base64"],
      [`{"node": {"id": 7}}`, "node.id: want a string"],
    ];
    for (const [config, message] of cases) {
      expect(f.vm.configure(config), config).toBe(false);
      expect(f.vm.logsAtLeast(4).at(-1), config).toContain(message);
    }
    stillRoutes(f);
  });

  it("a filter with no rules yet passes requests untouched", async () => {
    const f = await newFilter({});
    const s = f.exchange({ "x-asm-prefer-tag": "canary", ":authority": "mocka" });
    expect(s.requestHeader("x-graylane-lane")).toBeUndefined();
    expect(s.requestHeader("x-graylane-route")).toBeUndefined();
  });
});
