// GET /openapi.json: the REST API (OpenAPI 3.1, JSON Schema 2020-12). Paths and answers are written
// here, so the document is a contract rather than a dump of the code; the lane group's schemas come
// from its zod schemas (api/json-schema.ts), so they say exactly what the API checks and answers.
// test/integration/api.test.ts checks every express route is in it and every path in it is served.
import { laneGroupComponents } from "../model/lanegroup.js";
import { componentSchemas } from "./json-schema.js";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string) => ({ description, content: { "application/json": { schema } } });
const errors = (description: string) => json(ref("Errors"), description);
const nameParam = { name: "name", in: "path", required: true, description: "Lane group name", schema: { type: "string" } };
const actorHeader = { name: "X-Graylane-Actor", in: "header", required: false, description: 'Who makes the change, recorded in the revision (default "anonymous")', schema: { type: "string" } };
const ifMatch = { name: "If-Match", in: "header", required: false, description: 'The group\'s ETag (its revision, quoted or bare) or "*"; 412 when it differs', schema: { type: "string" } };
const etag = { ETag: { description: "The revision that last wrote the group, quoted", schema: { type: "string" } } };

/** Live subscribers in numbers (contracts.ts SubscriberSummary). */
const SUBSCRIBER_SUMMARY = {
  type: "object", required: ["connected", "atVersion", "pending", "nacked", "byVersion"],
  properties: {
    connected: { type: "integer" }, atVersion: { type: "integer", description: "ACKed the version served" },
    pending: { type: "integer", description: "a push not answered yet" }, nacked: { type: "integer", description: "last answer a NACK" },
    byVersion: { type: "object", additionalProperties: { type: "integer" }, description: "live subscribers per ACKed version" },
  },
} as const;

const schemas = {
  Errors: {
    type: "object", required: ["errors"],
    properties: { errors: { type: "array", items: { type: "object", required: ["path", "message"], properties: {
      path: { type: "string", description: "JSON Pointer (RFC 6901) into the request body; \"\" for the whole request" },
      message: { type: "string" },
    } } } },
  },
  // The lane group from its zod schemas (model/lanegroup.ts): LaneGroupInput (with LaneInput and
  // ServiceInput) as a PUT body, LaneGroup (Lane, Service) as answered, every default filled in.
  ...componentSchemas([laneGroupComponents.input, "input"], [laneGroupComponents.output, "output"]),
  StoredLaneGroup: {
    type: "object", required: ["revision", "lanegroup"],
    properties: {
      revision: { type: "integer", description: "The revision that last wrote the group (its ETag)" }, lanegroup: ref("LaneGroup"),
      releaseOverlay: {
        type: "object", description: "Beside a Kubernetes store: per lane, the weight (and match) an active release lays over the spec; the filters get the result, the spec is unchanged",
        additionalProperties: { type: "object", required: ["release", "weight"], properties: { release: { type: "string" }, weight: { type: "number" }, match: { type: "array" } } },
      },
    },
  },
  PatchOp: {
    description: "RFC 6902 operation relative to the group document; replace and remove also carry `old`, the previous value",
    type: "object", required: ["op", "path"],
    properties: { op: { enum: ["add", "remove", "replace"] }, path: { type: "string" }, value: {}, old: {} },
  },
  RevisionSummary: {
    type: "object", required: ["revision", "time", "actor", "op", "group", "groups"],
    properties: {
      revision: { type: "integer", minimum: 1 },
      time: { type: "string", format: "date-time" },
      actor: { type: "string" },
      op: { enum: ["create", "replace", "delete", "rollback", "discover"] },
      group: { type: ["string", "null"], description: "The group a create/replace/delete named; null for a rollback" },
      target: { type: "integer", description: "Rollbacks: the revision whose content was restored" },
      groups: { type: "array", items: { type: "string" }, description: "Groups whose content changed" },
    },
  },
  Revision: {
    allOf: [ref("RevisionSummary"), {
      type: "object", required: ["diff", "lanegroups"],
      properties: {
        diff: { type: "array", items: { type: "object", required: ["group", "action", "patch"], properties: {
          group: { type: "string" }, action: { enum: ["create", "replace", "delete"] }, patch: { type: "array", items: ref("PatchOp") },
        } } },
        lanegroups: { type: "array", items: ref("LaneGroup"), description: "Every group right after this revision" },
      },
    }],
  },
  PreviewRequest: {
    type: "object", additionalProperties: false, required: ["group", "service"],
    properties: {
      group: { type: "string" },
      service: { type: "string" },
      request: { type: "object", additionalProperties: false, properties: {
        method: { type: "string", default: "GET" },
        path: { type: "string", default: "/" },
        headers: { type: "object", additionalProperties: { type: "string" }, default: {} },
      } },
    },
  },
  PreviewResult: {
    type: "object", required: ["lane", "route", "source", "revision"],
    properties: {
      lane: { type: ["string", "null"] },
      route: { type: ["string", "null"] },
      source: { enum: ["override", "header", "baggage", "trace", "instance", "rule", "weight", "base", null] },
      revision: { type: "integer", description: "The group revision previewed" },
    },
  },
  Status: {
    type: "object", required: ["version", "revision", "nodes", "page"],
    properties: {
      page: { type: "object", required: ["offset", "limit", "nodes"], description: "nodes is this replica's, paged (offset, limit); page.nodes counts them all",
        properties: { offset: { type: "integer" }, limit: { type: "integer" }, nodes: { type: "integer" } } },
      summary: { ...SUBSCRIBER_SUMMARY, description: "Live subscribers in numbers: every replica's together (with replicas on etcd), else this one's" },
      replicas: { type: "array", description: "With replicas on etcd: each live replica's subscribers in numbers (kept under a lease: a dead replica drops off)",
        items: { ...SUBSCRIBER_SUMMARY, required: [...SUBSCRIBER_SUMMARY.required, "replica", "version", "updatedAt"], properties: { ...SUBSCRIBER_SUMMARY.properties, replica: { type: "string" }, version: { type: "string" }, updatedAt: { type: "string", format: "date-time" } } } },
      version: { type: "string", description: "RuleSet version (content hash) the control plane serves" },
      revision: { type: "integer" },
      nodes: { type: "array", items: { type: "object", required: ["nodeId", "version", "subscribers"], properties: {
        nodeId: { type: "string" },
        version: { type: "string", description: "Version every live subscriber ACKed, \"\" when they disagree" },
        subscribers: { type: "array", items: { type: "object", properties: {
          nodeId: { type: "string" }, instanceId: { type: "string" }, connected: { type: "boolean" },
          ackedVersion: { type: "string" }, pendingVersion: { type: "string" }, connectedAt: { type: "string", format: "date-time" },
          lastNack: { type: "object", properties: { version: { type: "string" }, error: { type: "string" }, at: { type: "string", format: "date-time" } } },
        } } },
      } } },
    },
  },
  Traffic: {
    type: "object", required: ["group", "windowMs", "services", "edge"],
    properties: {
      group: { type: "string" },
      windowMs: { type: "integer" },
      services: { type: "array", items: { type: "object", properties: {
        service: { type: "string" }, lane: { type: "string" }, requests: { type: "number" },
        observedShare: { type: "number" }, configuredShare: { type: "number" }, errorRate: { type: "number" },
        grpcStatuses: { type: "object", additionalProperties: { type: "integer" }, description: "Requests of gRPC responses per status name (OK, UNAVAILABLE, ...); {} without gRPC traffic" },
        p50Ms: { type: ["number", "null"] }, p99Ms: { type: ["number", "null"] },
      } } },
      edge: { type: "array", items: { type: "object", properties: { lane: { type: "string" }, requests: { type: "number" } } } },
    },
  },
};

export type PathItems = Record<string, Record<string, unknown>>;

const paths: PathItems = {
  "/v1/lanegroups": {
    get: {
      operationId: "listLaneGroups", summary: "Every lane group",
      responses: { 200: json({ type: "object", required: ["revision", "lanegroups"], properties: {
        revision: { type: "integer", description: "Latest store revision" },
        lanegroups: { type: "array", items: { allOf: [ref("StoredLaneGroup"), { type: "object", required: ["configuredShares"], properties: {
          configuredShares: {
            type: "object", additionalProperties: { type: "number", minimum: 0, maximum: 1 },
            description: "Configured share of the group's traffic per lane, 0..1: each lane's weight, the base lane what the weights leave",
          },
        } }] } },
      } }, "The groups, sorted by name") },
    },
  },
  "/v1/lanegroups/{name}": {
    parameters: [nameParam],
    get: {
      operationId: "getLaneGroup", summary: "One lane group",
      responses: { 200: { ...json(ref("StoredLaneGroup"), "The group"), headers: etag }, 304: { description: "If-None-Match matched" }, 404: errors("No such group") },
    },
    put: {
      operationId: "putLaneGroup", summary: "Create or replace a lane group (a new revision)",
      parameters: [ifMatch, { name: "If-None-Match", in: "header", required: false, description: '"*": create only', schema: { type: "string" } }, actorHeader],
      requestBody: { required: true, content: { "application/json": { schema: ref("LaneGroupInput") } } },
      responses: {
        200: { ...json(ref("StoredLaneGroup"), "Replaced"), headers: etag },
        201: { ...json(ref("StoredLaneGroup"), "Created"), headers: etag },
        400: errors("Invalid lane group (every problem, with its JSON Pointer); nothing changed"),
        412: errors("If-Match / If-None-Match did not hold"),
      },
    },
    delete: {
      operationId: "deleteLaneGroup", summary: "Delete a lane group (a new revision)",
      parameters: [ifMatch, actorHeader],
      responses: {
        200: json({ type: "object", required: ["revision"], properties: { revision: { type: "integer" } } }, "Deleted"),
        404: errors("No such group"), 412: errors("If-Match did not hold"),
      },
    },
  },
  "/v1/revisions": {
    get: {
      operationId: "listRevisions", summary: "The revision log, newest first",
      parameters: [
        { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
        { name: "before", in: "query", description: "Only revisions before this one (paging: pass `next`)", schema: { type: "integer" } },
        { name: "group", in: "query", description: "Only revisions that changed this group", schema: { type: "string" } },
      ],
      responses: {
        200: json({ type: "object", required: ["revisions"], properties: {
          revisions: { type: "array", items: ref("RevisionSummary") }, next: { type: "integer", description: "`before` for the next page, absent on the last" },
        } }, "Revisions"),
        400: errors("Bad query parameter"),
      },
    },
  },
  "/v1/revisions/{n}": {
    parameters: [{ name: "n", in: "path", required: true, schema: { type: "integer" } }],
    get: { operationId: "getRevision", summary: "One revision with its diff and the full content after it", responses: { 200: json(ref("Revision"), "The revision"), 404: errors("No such revision") } },
  },
  "/v1/rollback": {
    post: {
      operationId: "rollback", summary: "Write a new revision whose content equals revision n's",
      parameters: [actorHeader],
      requestBody: { required: true, content: { "application/json": { schema: { type: "object", required: ["revision"], additionalProperties: false, properties: { revision: { type: "integer", minimum: 1 } } } } } },
      responses: {
        200: json({ type: "object", required: ["revision", "target", "groups"], properties: {
          revision: { type: "integer", description: "The new revision" }, target: { type: "integer" }, groups: { type: "array", items: { type: "string" }, description: "Groups whose content changed" },
        } }, "Rolled back"),
        400: errors("Bad request"), 404: errors("No such revision"),
      },
    },
  },
  "/v1/preview": {
    post: {
      operationId: "preview", summary: "The decision of the real filter.wasm at the edge, with empty trace memory",
      requestBody: { required: true, content: { "application/json": { schema: ref("PreviewRequest") } } },
      responses: { 200: json(ref("PreviewResult"), "The decision"), 400: errors("Bad request"), 404: errors("No such group"), 503: errors("filter.wasm not built") },
    },
  },
  "/v1/status": {
    get: {
      operationId: "status", summary: "Connected subscribers per node, ACKed versions, NACK errors; every replica's in numbers",
      parameters: [
        { name: "limit", in: "query", description: "Nodes per page", schema: { type: "integer", minimum: 1, maximum: 10000, default: 1000 } },
        { name: "offset", in: "query", description: "Nodes to skip", schema: { type: "integer", minimum: 0, default: 0 } },
      ],
      responses: { 200: json(ref("Status"), "Status"), 400: errors("Invalid limit or offset") },
    },
  },
  "/v1/traffic": {
    get: {
      operationId: "traffic", summary: "Per service and lane (counted inbound): requests, shares, error rate, p50/p99; plus edge decisions",
      parameters: [
        { name: "group", in: "query", required: true, schema: { type: "string" } },
        { name: "window", in: "query", description: "Duration like 60s, 5m, 1h, 1h30m, 250ms (bare number: seconds)", schema: { type: "string", default: "60s" } },
      ],
      responses: { 200: json(ref("Traffic"), "Traffic summary"), 400: errors("Bad query parameter") },
    },
  },
  "/v1/traffic/report-now": {
    post: {
      operationId: "reportNow", summary: "Ask every connected filter to send its traffic report now",
      responses: { 202: json({ type: "object", properties: { requested: { type: "integer" } }, required: ["requested"] }, "How many filters were asked") },
    },
  },
  "/healthz": { get: { operationId: "healthz", summary: "Liveness", responses: { 200: json({ type: "object", properties: { status: { const: "ok" } } }, "Alive") } } },
  "/readyz": {
    get: {
      operationId: "readyz", summary: "Readiness: the store answers (and the extensions say ready)",
      responses: { 200: json({ type: "object", properties: { status: { const: "ready" } } }, "Ready"), 503: errors("Not ready") },
    },
  },
  "/metrics": { get: { operationId: "metrics", summary: "Prometheus metrics", responses: { 200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } } } } },
  "/openapi.json": { get: { operationId: "openapi", summary: "This document", responses: { 200: json({ type: "object" }, "OpenAPI 3.1 document") } } },
};

/** The document, with extra paths from server extensions (e.g. the rule push) merged in. */
export function openApiDocument(extra: PathItems = {}): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "Graylane control plane",
      version: "1",
      description: "Lane groups, their revision log, previews through the real filter, rule-push status and traffic. Errors are {\"errors\": [{\"path\", \"message\"}]} with JSON Pointer paths.",
    },
    servers: [{ url: "http://127.0.0.1:7070" }],
    paths: withBodyLimit({ ...paths, ...extra }),
    components: { schemas },
  };
}

/** The request body limit of app.ts's JSON parser; a larger body is 413 on every operation that takes one. */
export const BODY_LIMIT = "1mb";

function withBodyLimit(items: PathItems): PathItems {
  const out: PathItems = {};
  for (const [path, item] of Object.entries(items)) {
    out[path] = Object.fromEntries(Object.entries(item).map(([method, op]) => {
      const o = op as { requestBody?: unknown; responses?: Record<string, unknown> };
      return [method, o.requestBody ? { ...o, responses: { ...o.responses, 413: errors(`Request body over ${BODY_LIMIT}; nothing changed`) } } : op];
    }));
  }
  return out;
}
