// zod schemas → the JSON Schemas (2020-12) of /openapi.json, so a resource is described once (its zod
// schema) and its OpenAPI schemas cannot drift from what the API checks and answers. Requests use
// the schema's input side ("input": defaults optional), responses its output side ("output":
// defaulted fields required), so schemathesis checks every answer against exactly what it holds.
import { z } from "zod";

export type Io = "input" | "output";
type Json = Record<string, unknown>;

// Formats zod writes for string checks that JSON Schema has no format for (the pattern says it all).
const ZOD_FORMATS = new Set(["starts_with", "ends_with", "includes"]);

const params = (io: Io) => ({
  io,
  target: "draft-2020-12" as const,
  override: ({ jsonSchema }: { jsonSchema: Json }) => {
    if (typeof jsonSchema.format === "string" && ZOD_FORMATS.has(jsonSchema.format)) delete jsonSchema.format;
  },
});

function bare(schema: Json): Json {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/** One schema, inline. */
export function jsonSchema(schema: z.ZodType, io: Io): Json {
  return bare(z.toJSONSchema(schema, params(io)) as Json);
}

/**
 * Named schemas as OpenAPI components (`#/components/schemas/<name>`): each one that another uses
 * is a $ref to it. Several sides merge when the names they share have the same schema.
 */
export function componentSchemas(...sides: Array<[Record<string, z.ZodType>, Io]>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [named, io] of sides) {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
    const { schemas } = z.toJSONSchema(registry, { ...params(io), uri: (id) => `#/components/schemas/${id}` }) as { schemas: Record<string, Json> };
    for (const [id, schema] of Object.entries(schemas)) {
      const s = bare(schema);
      if (id in out && JSON.stringify(out[id]) !== JSON.stringify(s)) throw new Error(`OpenAPI component ${id} differs between its ${io} side and another`);
      out[id] = s;
    }
  }
  return out;
}
