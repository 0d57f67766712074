// deploy/crds/*.yaml is generated from the zod models (control-plane/src/kube/crds.ts) and checked
// in: the files must be exactly what the generator makes now (run `make crds` after a model change).
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { crdFiles, crds, structural } from "../../control-plane/src/kube/crds.js";
import { LIMITS, parseLaneGroup } from "../../control-plane/src/model/lanegroup.js";

describe("CRDs", () => {
  it("deploy/crds/ holds exactly what `make crds` generates", () => {
    const fresh = crdFiles();
    const checkedIn = new Map(readdirSync("deploy/crds").filter((f) => f.endsWith(".yaml")).map((f) => [f, readFileSync(`deploy/crds/${f}`, "utf8")]));
    expect([...checkedIn.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [f, text] of fresh) expect(checkedIn.get(f), `deploy/crds/${f} is stale: run make crds`).toBe(text);
  });

  it("are structural: every node typed, no $ref, no default, unions merged, spec keeps unknown fields", () => {
    const walk = (s: any, at: string, out: string[]) => {
      if (s["x-kubernetes-preserve-unknown-fields"] !== true && typeof s.type !== "string") out.push(`${at}: no type`);
      for (const k of ["$ref", "$defs", "default", "anyOf", "allOf", "additionalProperties", "format", "const"]) {
        if (k in s && !(k === "additionalProperties" && typeof s[k] === "object" && !s.properties)) out.push(`${at}: ${k}`);
      }
      for (const b of s.oneOf ?? []) if (Object.keys(b).some((k) => k !== "required")) out.push(`${at}: oneOf branch with ${Object.keys(b)}`);
      for (const [p, c] of Object.entries(s.properties ?? {})) walk(c, `${at}/${p}`, out);
      if (s.items) walk(s.items, `${at}/items`, out);
      if (typeof s.additionalProperties === "object") walk(s.additionalProperties, `${at}/*`, out);
    };
    for (const c of crds()) {
      const root = c.spec.versions[0].schema.openAPIV3Schema;
      const problems: string[] = [];
      walk(root, c.metadata.name, problems);
      expect(problems).toEqual([]);
      expect(root.properties.spec["x-kubernetes-preserve-unknown-fields"]).toBe(true);
      expect(c.spec.scope).toBe("Cluster");
    }
  });

  it("carry the model's bounds and patterns", () => {
    const [lg, rel] = crds();
    const spec = lg.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.properties.name).toBeUndefined(); // metadata.name is the group's name
    expect(spec.required).toEqual(["services"]);
    expect(spec.properties.services.minItems).toBe(1);
    expect(spec.properties.lanes.items.properties.weight).toMatchObject({ type: "number", minimum: 0, maximum: 100 });
    expect(spec.properties.stickyKey.properties.maxAgeSeconds).toMatchObject({ type: "integer", minimum: 0, exclusiveMinimum: true });
    expect(spec.properties.lanes.items.properties.match.items.properties.headers.additionalProperties.properties.present).toEqual({ type: "boolean", enum: [true] });
    const steps = rel.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.steps;
    expect(steps.maxItems).toBe(100);
    expect(steps.items.oneOf).toEqual([{ required: ["setWeight"] }, { required: ["setMatch"] }, { required: ["pause"] }, { required: ["analysis"] }]);
  });

  it("list and string bounds are the model's: the CRD and REST refuse the same sizes", () => {
    const spec = crds()[0].spec.versions[0].schema.openAPIV3Schema.properties.spec;
    expect(spec.properties.services.maxItems).toBe(LIMITS.services);
    expect(spec.properties.lanes.maxItems).toBe(LIMITS.lanes);
    expect(spec.properties.services.items.properties.hosts).toMatchObject({ maxItems: LIMITS.hosts, items: { maxLength: LIMITS.host } });
    const match = spec.properties.lanes.items.properties.match;
    expect(match.maxItems).toBe(LIMITS.matchBlocks);
    expect(match.items.properties.headers.maxProperties).toBe(LIMITS.entries);
    expect(match.items.properties.headers.additionalProperties.properties.exact.maxLength).toBe(LIMITS.value);
    const services = Array.from({ length: LIMITS.services + 1 }, (_, i) => ({ name: `s${i}` }));
    const refused = parseLaneGroup({ name: "big", services });
    expect(refused.ok ? [] : refused.errors).toContainEqual({ path: "/services", message: `at most ${LIMITS.services} services` });
    const headers = Object.fromEntries(Array.from({ length: LIMITS.entries + 1 }, (_, i) => [`h${i}`, { present: true }]));
    const many = parseLaneGroup({ name: "big", services: [{ name: "a" }], lanes: [{ name: "l", match: [{ headers }] }] });
    expect(many.ok ? [] : many.errors).toContainEqual({ path: "/lanes/0/match/0/headers", message: `at most ${LIMITS.entries} headers` });
    expect(parseLaneGroup({ name: "ok", services: services.slice(0, LIMITS.services) }).ok).toBe(true);
  });

  it("structural() inlines $ref, turns nullable unions into nullable and refuses what it cannot express", () => {
    expect(structural({ $defs: { A: { type: "string" } }, type: "object", properties: { a: { $ref: "#/$defs/A" } } }))
      .toEqual({ type: "object", properties: { a: { type: "string" } } });
    expect(structural({ anyOf: [{ type: "number" }, { type: "null" }] })).toEqual({ type: "number", nullable: true });
    expect(() => structural({ type: "object", properties: { x: { anyOf: [{ type: "number" }, { type: "string" }] } } })).toThrow(/\/x: a union of number, string/);
  });
});
