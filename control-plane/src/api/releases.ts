// /v1/releases: the REST face of the release engine, and its part of /openapi.json.
import express, { type Request, type Response, type Router } from "express";
import { actorOf } from "./auth.js";
import { fail } from "./errors.js";
import { jsonSchema } from "./json-schema.js";
import type { PathItems } from "./openapi.js";
import { weightShare } from "../compile/shares.js";
import type { TrafficSource } from "../contracts.js";
import type { LeaderRoute } from "../replicas/leader.js";
import { OPERATIONS, type Operation, type ReleaseEngine } from "../rollout/engine.js";
import { releaseView, ReleaseViewSchema } from "../rollout/operations.js";
import { ReleaseInput } from "../rollout/spec.js";
import { STATUSES, type Release, type ReleaseStatus } from "../rollout/state.js";
import type { Store } from "../store/types.js";

const OBSERVE_WINDOW_MS = 30_000;

export interface ReleaseRouteDeps {
  store: Store;
  traffic?: TrafficSource;
  /** With replicas: where the engine runs; a non-leader forwards creations and operations there. */
  leader?: () => LeaderRoute;
}

export function releaseRoutes(engine: ReleaseEngine, deps: ReleaseRouteDeps): Router {
  const r = express.Router();
  /** Forwards a write to the leader replica; false when this replica should handle it. */
  const forwarded = async (req: Request, res: Response): Promise<boolean> => {
    const route = deps.leader?.();
    if (!route || route.self) return false;
    if (!route.url) throw fail(503, "no control-plane replica leads the release engine yet: try again shortly");
    const up = await fetch(route.url + req.originalUrl, {
      method: req.method,
      headers: { "content-type": "application/json", "x-graylane-actor": actorOf(req) },
      body: JSON.stringify(req.body ?? {}),
      signal: AbortSignal.timeout(30_000),
    }).catch((e: Error) => { throw fail(503, `the release leader at ${route.url} does not answer: ${e.message}`); });
    const location = up.headers.get("location");
    if (location) res.location(location);
    res.status(up.status).type("application/json").send(await up.text());
    return true;
  };

  r.get("/v1/releases", (req, res) => {
    const group = typeof req.query.group === "string" ? req.query.group : undefined;
    const status = typeof req.query.status === "string" ? req.query.status.split(",") : undefined;
    const bad = status?.find((s) => !STATUSES.includes(s as ReleaseStatus));
    if (bad !== undefined) throw fail(400, `status ${bad}: want one of ${STATUSES.join(", ")}`, "/status");
    res.json({ releases: engine.list({ group, status: status as ReleaseStatus[] | undefined }).map(releaseView) });
  });

  r.post("/v1/releases", async (req, res) => {
    if (await forwarded(req, res)) return;
    const release = await engine.create(req.body, actorOf(req));
    res.status(201).location(`/v1/releases/${release.name}`).json({ release: releaseView(release) });
  });

  r.get("/v1/releases/:name", (req, res) => {
    const release = engine.get(req.params.name);
    if (!release) throw fail(404, `release ${req.params.name} does not exist`);
    res.json({ release: releaseView(release), traffic: observed(release, deps) });
  });

  r.post("/v1/releases/:name/:op", async (req, res) => {
    const op = req.params.op as Operation;
    if (!OPERATIONS.includes(op)) throw fail(404, `no operation ${req.params.op}: want one of ${OPERATIONS.join(", ")}`);
    if (await forwarded(req, res)) return;
    res.json({ release: releaseView(await engine.operate(req.params.name, op, actorOf(req))) });
  });
  return r;
}

/** The lane against base on the lane's services over the last 30 s, as `watch` and the dashboard show it. */
export function observed(release: Release, deps: ReleaseRouteDeps) {
  if (!deps.traffic) return undefined;
  const services = new Set(deps.store.get(release.group)?.lanegroup.lanes.find((l) => l.name === release.lane)?.services ?? []);
  const rows = deps.traffic.summary(release.group, OBSERVE_WINDOW_MS).services.filter((s) => services.has(s.service));
  const total = rows.reduce((n, s) => n + s.requests, 0);
  const lane = rows.filter((s) => s.lane === release.lane);
  const requests = lane.reduce((n, s) => n + s.requests, 0);
  const errors = lane.reduce((n, s) => n + s.errorRate * s.requests, 0);
  const p99s = lane.map((s) => s.p99Ms).filter((v): v is number => v !== null);
  return {
    windowMs: OBSERVE_WINDOW_MS,
    requests,
    observedShare: total > 0 ? requests / total : 0,
    configuredShare: weightShare(release.weight),
    errorRate: requests > 0 ? errors / requests : 0,
    p99Ms: p99s.length ? Math.max(...p99s) : null,
  };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string) => ({ description, content: { "application/json": { schema } } });
const errors = (description: string) => json(ref("Errors"), description);
const actorHeader = { name: "X-Graylane-Actor", in: "header", required: false, description: "Who acts, recorded in the release's events", schema: { type: "string" } };
// From the zod schemas: a release as answered (rollout/operations.ts) and as written (rollout/spec.ts).
const releaseSchema = jsonSchema(ReleaseViewSchema, "output");
const releaseInput = jsonSchema(ReleaseInput, "input");
const one = json({ type: "object", required: ["release"], properties: { release: releaseSchema } }, "The release");

export const releaseOpenApi: PathItems = {
  "/v1/releases": {
    get: {
      operationId: "listReleases", summary: "Releases, newest first",
      parameters: [
        { name: "group", in: "query", schema: { type: "string" } },
        { name: "status", in: "query", description: "Comma-separated statuses", schema: { type: "string" } },
      ],
      responses: { 200: json({ type: "object", required: ["releases"], properties: { releases: { type: "array", items: releaseSchema } } }, "Releases"), 400: errors("Bad query parameter") },
    },
    post: {
      operationId: "createRelease", summary: "Start a progressive release of a lane",
      parameters: [actorHeader],
      requestBody: { required: true, content: { "application/json": { schema: releaseInput } } },
      responses: { 201: one, 400: errors("Invalid release (every problem, with its JSON Pointer); nothing started"), 409: errors("The name is taken or the lane already has an active release") },
    },
  },
  "/v1/releases/{name}": {
    parameters: [{ name: "name", in: "path", required: true, schema: { type: "string" } }],
    get: { operationId: "getRelease", summary: "One release, with the lane's observed share over the last 30 s", responses: { 200: one, 404: errors("No such release") } },
  },
  "/v1/releases/{name}/{op}": {
    parameters: [
      { name: "name", in: "path", required: true, schema: { type: "string" } },
      { name: "op", in: "path", required: true, schema: { enum: [...OPERATIONS] } },
    ],
    post: {
      operationId: "operateRelease", summary: "approve, pause, resume, abort, promote, finish or undo",
      parameters: [actorHeader],
      responses: { 200: one, 404: errors("No such release or operation"), 409: errors("The release's state does not allow it") },
    },
  },
};
