// The CustomResourceDefinitions of LaneGroup, Release and LaneGroupRevision (graylane.io/v1alpha1),
// generated from the zod models, so REST (/openapi.json), the CRDs and the docs describe a resource
// from one source and a bound written in zod holds for kubectl too. `make crds` (or `graylane crds
// --out deploy/crds`) writes deploy/crds/*.yaml; test/unit/crds.test.ts fails when the checked-in
// files differ from what this module makes.
//
// The JSON Schema zod gives (api/json-schema.ts) becomes a Kubernetes *structural* schema: every
// node typed, $ref inlined, no `default` (defaults are the model's, applied when a stored object is
// read, so a default added later applies to old objects too and GitOps tools see no server-filled
// drift), no `additionalProperties: false` (unknown fields are kept, with
// `x-kubernetes-preserve-unknown-fields`, so the model and the admission webhook name each one at
// its /spec/... pointer instead of the API server pruning it silently), unions merged into one
// object schema, `multipleOf` left to the model (decimal steps are inexact in floating point).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";
import { z } from "zod";
import { jsonSchema } from "../api/json-schema.js";
import { LaneGroupInput } from "../model/lanegroup.js";
import { ReleaseInput } from "../rollout/spec.js";
import { ReleaseSchema } from "../rollout/state.js";
import {
  API_GROUP, API_VERSION, LANE_GROUP, LANE_GROUP_REVISION, LaneGroupRevisionSpec, LaneGroupStatus, RELEASE, type ResourceNames,
} from "../store/kube-resources.js";

type Json = Record<string, any>;

/** Keywords a structural schema may carry as they are. */
const KEEP = new Set([
  "type", "description", "properties", "items", "additionalProperties", "required", "enum", "pattern", "minLength", "maxLength",
  "minItems", "maxItems", "uniqueItems", "minimum", "maximum", "minProperties", "maxProperties", "nullable",
  "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
]);

/** A JSON Schema from zod as a Kubernetes structural schema (see the header). Throws on what it cannot express. */
export function structural(schema: Json, where = "", defs: Json = schema.$defs ?? {}): Json {
  if (typeof schema.$ref === "string") {
    const m = /^#\/\$defs\/(.+)$/.exec(schema.$ref);
    if (!m || !defs[m[1]!]) throw new Error(`${where || "/"}: cannot inline $ref ${schema.$ref}`);
    const { $ref: _ref, ...rest } = schema;
    return structural({ ...defs[m[1]!], ...rest }, where, defs);
  }
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    const { anyOf: _a, oneOf: _o, ...outer } = schema;
    const branches = (union as Json[]).map((b, i) => structural(b, `${where}/anyOf/${i}`, defs));
    const nonNull = branches.filter((b) => b.type !== "null");
    const extra = { ...pick(outer, ["description"]), ...(nonNull.length < branches.length ? { nullable: true } : {}) };
    if (nonNull.length === 1) return { ...nonNull[0], ...extra };
    if (nonNull.every((b) => b.type === "object")) return { ...mergeObjects(nonNull, where), ...extra };
    throw new Error(`${where || "/"}: a union of ${nonNull.map((b) => b.type).join(", ")} has no structural schema`);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === "type" && Array.isArray(v)) {
      const types = v.filter((t) => t !== "null");
      if (types.length !== 1) throw new Error(`${where || "/"}: type ${v.join(" | ")} has no structural schema`);
      out.type = types[0];
      if (types.length < v.length) out.nullable = true;
    } else if (k === "const") out.enum = [v];
    else if (k === "exclusiveMinimum" || k === "exclusiveMaximum") {
      if (typeof v === "number") { out[k === "exclusiveMinimum" ? "minimum" : "maximum"] = v; out[k] = true; } else if (v === true) out[k] = true;
    } else if (k === "properties") out.properties = Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, structural(s, `${where}/${p}`, defs)]));
    else if (k === "items") out.items = Object.keys(v).length ? structural(v, `${where}/items`, defs) : { "x-kubernetes-preserve-unknown-fields": true };
    else if (k === "additionalProperties") {
      if (v === false) out["x-kubernetes-preserve-unknown-fields"] = true;
      else if (typeof v === "object") out.additionalProperties = structural(v, `${where}/*`, defs);
    } else if (KEEP.has(k)) out[k] = v;
  }
  if ("enum" in out && out.type === undefined) out.type = typeof out.enum[0] === "boolean" ? "boolean" : typeof out.enum[0] === "number" ? "number" : "string";
  if (out.type === undefined && !out["x-kubernetes-preserve-unknown-fields"]) return { "x-kubernetes-preserve-unknown-fields": true, ...pick(out, ["description"]) };
  if (out.type === "object" && out.properties && out.additionalProperties) delete out.additionalProperties;
  return out;
}

function pick(o: Json, keys: string[]): Json {
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

/** Object branches of a union as one object: every property of any branch; required only where all agree. */
function mergeObjects(branches: Json[], where: string): Json {
  const properties: Json = {};
  for (const b of branches) {
    for (const [p, s] of Object.entries((b.properties ?? {}) as Json)) {
      const had = properties[p];
      if (!had) properties[p] = s;
      else if (had.enum && s.enum) properties[p] = { ...had, enum: [...new Set([...had.enum, ...s.enum])] };
      else if (had.type !== s.type) throw new Error(`${where}/${p}: union branches give it types ${had.type} and ${s.type}`);
    }
  }
  const reqs = branches.map((b) => (b.required ?? []) as string[]);
  const required = reqs[0]!.filter((r) => reqs.every((q) => q.includes(r)));
  const out: Json = { type: "object", properties, "x-kubernetes-preserve-unknown-fields": true };
  if (required.length) out.required = required;
  // Exactly one branch, when each branch is told apart by keys no other branch requires (a step is
  // one of setWeight, setMatch, pause, analysis).
  const all = reqs.flat();
  if (reqs.every((q) => q.length > 0) && new Set(all).size === all.length) out.oneOf = reqs.map((q) => ({ required: q }));
  return out;
}

/** `schema`'s JSON Schema (io side) without the named top-level properties. */
function without(schema: z.ZodType, io: "input" | "output", drop: string[]): Json {
  const s: Json = jsonSchema(schema, io);
  for (const k of drop) delete s.properties?.[k];
  if (Array.isArray(s.required)) s.required = s.required.filter((r: string) => !drop.includes(r));
  if (s.required?.length === 0) delete s.required;
  return s;
}

interface Column { name: string; type: string; jsonPath: string; description?: string; priority?: number }

function crd(names: ResourceNames, opts: { spec: Json; status?: Json; columns: Column[]; description: string; nameRule?: { pattern: string; message: string }; immutable?: boolean }): Json {
  const spec: Json = { ...structural(opts.spec, "/spec"), "x-kubernetes-preserve-unknown-fields": true };
  const root: Json = {
    type: "object",
    description: opts.description,
    properties: {
      apiVersion: { type: "string" },
      kind: { type: "string" },
      metadata: { type: "object" },
      spec,
      ...(opts.status ? { status: structural(opts.status, "/status") } : {}),
    },
    required: ["spec"],
  };
  if (opts.nameRule) root["x-kubernetes-validations"] = [{ rule: `self.metadata.name.matches('${opts.nameRule.pattern}')`, message: opts.nameRule.message }];
  if (opts.immutable) spec["x-kubernetes-validations"] = [{ rule: "self == oldSelf", message: `a ${names.kind} is immutable` }];
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${names.plural}.${API_GROUP}`, labels: { "app.kubernetes.io/name": "graylane", "app.kubernetes.io/part-of": "graylane" } },
    spec: {
      group: API_GROUP,
      scope: "Cluster",
      names: { kind: names.kind, listKind: names.listKind, plural: names.plural, singular: names.singular, shortNames: names.shortNames, categories: ["graylane"] },
      versions: [{
        name: API_VERSION, served: true, storage: true,
        ...(opts.status ? { subresources: { status: {} } } : {}),
        additionalPrinterColumns: opts.columns,
        schema: { openAPIV3Schema: root },
      }],
    },
  };
}

const NAME_PATTERN = (jsonSchema(LaneGroupInput, "input").properties as Json).name.pattern as string;
const condition = (type: string) => `.status.conditions[?(@.type=="${type}")].status`;

/** The three CRDs, in the order to install them. */
export function crds(): Json[] {
  return [
    crd(LANE_GROUP, {
      description: "A lane group (docs/reference.md): metadata.name is the group's name, spec the rest of the lane group document",
      spec: without(LaneGroupInput, "input", ["name"]),
      status: jsonSchema(LaneGroupStatus, "output"),
      nameRule: { pattern: NAME_PATTERN, message: "metadata.name: must be 1-63 lowercase letters, digits or hyphens, starting with a letter" },
      columns: [
        // A printer column's JSONPath prints only its first match, so the control plane writes the
        // lists into status.
        { name: "Services", type: "string", jsonPath: ".status.services", description: "The group's services" },
        { name: "Lanes", type: "string", jsonPath: ".status.lanes", description: "The group's lanes besides base" },
        { name: "Revision", type: "integer", jsonPath: ".status.revision", description: "The Graylane revision that last wrote the spec (the REST ETag)" },
        { name: "Synced", type: "string", jsonPath: condition("Synced"), description: "Every live subscriber holds a RuleSet compiled from this generation" },
        { name: "Ready", type: "string", jsonPath: condition("Ready"), priority: 1, description: "The spec passed every check and is in the RuleSet" },
        { name: "Discovered", type: "string", jsonPath: ".status.discovered", priority: 1, description: "With autoLanes: the services found in each lane" },
        { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
      ],
    }),
    crd(RELEASE, {
      description: "A progressive release of one lane (docs/releases.md): metadata.name is the release's name, spec its steps, analysis and webhooks, status the state machine's position",
      spec: without(ReleaseInput, "input", ["name"]),
      status: without(ReleaseSchema, "output", ["name", "group", "lane", "strategy", "steps", "analysis", "webhooks"]),
      nameRule: { pattern: (jsonSchema(ReleaseInput, "input").properties as Json).name.pattern as string, message: "metadata.name: must be 1-63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen" },
      columns: [
        { name: "Group", type: "string", jsonPath: ".spec.group" },
        { name: "Lane", type: "string", jsonPath: ".spec.lane" },
        { name: "Status", type: "string", jsonPath: ".status.status" },
        { name: "Weight", type: "number", jsonPath: ".status.weight", description: "The lane's weight (percent) as the release last set it" },
        { name: "Step", type: "integer", jsonPath: ".status.currentStep", priority: 1 },
        { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
      ],
    }),
    crd(LANE_GROUP_REVISION, {
      description: "One immutable revision of the lane groups (written by the control plane, never by hand): who changed what, with the diff and the content each changed group had before and after",
      spec: jsonSchema(LaneGroupRevisionSpec, "output"),
      immutable: true,
      columns: [
        { name: "Revision", type: "integer", jsonPath: ".spec.revision" },
        { name: "Op", type: "string", jsonPath: ".spec.op" },
        { name: "Groups", type: "string", jsonPath: ".spec.groups" },
        { name: "Actor", type: "string", jsonPath: ".spec.actor" },
        { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
      ],
    }),
  ];
}

const HEADER = "# Generated from the zod models by control-plane/src/kube/crds.ts (`make crds`); do not edit.\n";

/** File name → YAML text, as deploy/crds/ holds them. */
export function crdFiles(): Map<string, string> {
  return new Map(crds().map((c) => [`${c.metadata.name}.yaml`, HEADER + stringify(c, { lineWidth: 0 })]));
}

export function writeCrds(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [file, text] of crdFiles()) {
    writeFileSync(join(dir, file), text);
    written.push(join(dir, file));
  }
  return written;
}

// `tsx control-plane/src/kube/crds.ts DIR` (make crds).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const f of writeCrds(process.argv[2] ?? "deploy/crds")) console.log(`wrote ${f}`);
}
