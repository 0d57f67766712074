// The lane group's OpenAPI schemas are derived from its zod schemas (model/lanegroup.ts through
// api/json-schema.ts) with a request side and a response side. Checked with ajv (JSON Schema 2020-12,
// the dialect of OpenAPI 3.1): whatever parseLaneGroup accepts fits the request schema, whatever it
// answers fits the response schema (which schemathesis holds every answer to), and a group lacking a
// default fits only the request schema.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Ajv2020 } from "ajv/dist/2020.js";
import { openApiDocument } from "../../control-plane/src/api/openapi.js";
import { LaneGroupSchema, parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { groupsArb } from "../support/fuzz.js";
import { mockGroup } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";

const doc = openApiDocument() as { paths: any; components: { schemas: Record<string, object> } };
// multipleOfPrecision: weights are multiples of 0.01, which binary floating point cannot say exactly.
const ajv = new Ajv2020({ strict: false, allErrors: true, multipleOfPrecision: 9 });
for (const [name, schema] of Object.entries(doc.components.schemas)) ajv.addSchema(schema, `#/components/schemas/${name}`);
const validator = (name: string) => {
  const v = ajv.getSchema(`#/components/schemas/${name}`)!;
  return (x: unknown) => (v(x) ? "ok" : JSON.stringify(v.errors));
};
const request = validator("LaneGroupInput");
const response = validator("LaneGroup");

const parsed = (input: unknown): LaneGroup => {
  const r = parseLaneGroup(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const examples: Array<[string, unknown]> = [
  ["demo/lanegroup.json", JSON.parse(readFileSync("demo/lanegroup.json", "utf8"))],
  ["test/fixtures/lanegroup-mock.json", JSON.parse(readFileSync("test/fixtures/lanegroup-mock.json", "utf8"))],
  ["mockGroup", mockGroup()],
  ["shopGroup", shopGroup()],
  ["a minimal group", { name: "m", services: [{ name: "s" }] }],
  // A defaulted host is the service's name, which is no host name when it ends with a hyphen.
  ["a service name that is no host name", { name: "h", services: [{ name: "svc-" }], lanes: [{ name: "c-", weight: 0.07 }] }],
  ["a generated sticky cookie", { name: "k", services: [{ name: "k1" }], stickyKey: { cookie: "uid", generate: true } }],
];

describe("lane group OpenAPI schemas from zod", () => {
  it.each(examples)("%s: the input fits the request schema, what the API answers fits the response schema", (_what, input) => {
    expect(request(input)).toBe("ok");
    const value = parsed(input);
    expect(response(JSON.parse(JSON.stringify(value)))).toBe("ok");
    expect(LaneGroupSchema.safeParse(value).success).toBe(true);
  });

  it("holds for random valid lane groups", () => {
    fc.assert(fc.property(groupsArb, (groups) => {
      for (const g of groups) {
        expect(request(g)).toBe("ok");
        expect(response(JSON.parse(JSON.stringify(parsed(g))))).toBe("ok");
      }
    }), { numRuns: 150, seed: 12 });
  });

  it("the response schema requires every default, the request schema none; both refuse unknown fields", () => {
    const value = parsed(mockGroup()) as any;
    expect(response(value)).toBe("ok");
    for (const drop of [["stickySalt"], ["baseLane"], ["lanes", 0, "fallback"], ["lanes", 0, "match"], ["services", 1, "hosts"], ["services", 1, "paths"]]) {
      const copy = structuredClone(value);
      let at = copy;
      for (const k of drop.slice(0, -1)) at = at[k];
      delete at[drop.at(-1)!];
      expect(response(copy), drop.join("/")).toMatch(/required/);
      expect(request(copy), drop.join("/")).toBe("ok");
    }
    expect(response({ ...value, colour: "red" })).toMatch(/additionalProperties/);
    expect(request({ ...mockGroup(), colour: "red" })).toMatch(/additionalProperties/);
  });

  it("PUT takes the request schema and every answer carries the response schema", () => {
    const put = doc.paths["/v1/lanegroups/{name}"].put;
    expect(put.requestBody.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/LaneGroupInput" });
    expect(doc.components.schemas.StoredLaneGroup).toMatchObject({ properties: { lanegroup: { $ref: "#/components/schemas/LaneGroup" } } });
    expect(put.responses[200].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/StoredLaneGroup" });
    expect(JSON.stringify(doc)).not.toMatch(/"format":"starts_with"|"\$schema"/);
  });
});
