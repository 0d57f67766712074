// The REST API of DESIGN.md's table, as an express 5 app over a Store: the routes here, /v1/releases
// (releases.ts) and /v1/overrides/sign (overrides.ts). The rule push, traffic ingestion and release
// engine are optional dependencies (no-op defaults; no /v1/releases without an engine), so the API
// runs and is tested on its own. `GET /` serves the live dashboard (control-plane/src/dashboard),
// which reads this same API from the browser.
import express, { type Request } from "express";
import { Registry } from "prom-client";
import { z } from "zod";
import type { RuleServerStatus, RuleStatusSource, SubscriberSummary, TrafficSource, TrafficSummary } from "../contracts.js";
import { configuredShares } from "../compile/shares.js";
import { dashboardRouter } from "../dashboard/index.js";
import { pointer, type FieldError } from "../model/errors.js";
import type { Expected, Store } from "../store/types.js";
import { parseDuration } from "../model/duration.js";
import { errorHandler, fail, HttpError, notFound } from "./errors.js";
import { actorOf, authenticate } from "./auth.js";
import type { OverrideKey } from "../auth/override.js";
import type { Tokens } from "../auth/tokens.js";
import type { LeaderRoute } from "../replicas/leader.js";
import type { ReplicaStatus } from "../replicas/status-board.js";
import type { ReleaseEngine } from "../rollout/engine.js";
import { apiMetrics } from "./metrics.js";
import { BODY_LIMIT, openApiDocument } from "./openapi.js";
import { overrideOpenApi, overrideRoutes } from "./overrides.js";
import { Previewer } from "./preview.js";
import { releaseOpenApi, releaseRoutes } from "./releases.js";

export interface ApiOptions {
  store: Store;
  rules?: RuleStatusSource;
  traffic?: TrafficSource;
  /** filter.wasm for POST /v1/preview (default: filter/build/filter.wasm of this checkout). */
  wasmPath?: string;
  /** Shared with the other parts of the server; /metrics serves all of it. */
  registry?: Registry;
  /** With replicas on etcd: every replica's subscriber summary (replicas/status-board.ts). */
  replicas?: () => Promise<ReplicaStatus[]>;
  /** Kubernetes replicas: where the traffic counters are complete (the active replica); a follower passes /v1/traffic there. */
  trafficLeader?: () => LeaderRoute;
  /** Beside a Kubernetes store: what active releases lay over each group's lanes (shown with the spec). */
  overlays?: (group: string) => Record<string, { release: string; weight: number; match?: unknown[] }>;
  /** The engine behind /v1/releases; with replicas, where it leads (non-leaders forward writes). */
  releases?: { engine: ReleaseEngine; leader?: () => LeaderRoute };
  /** The key of POST /v1/overrides/sign (without one it answers 409). */
  overrideKey?: OverrideKey;
  /** The clock of signed overrides' expiry (tests). */
  now?: () => number;
  /** API tokens; without them (loopback only) every route is open. */
  tokens?: Tokens;
  /** Extra readiness check (e.g. the gRPC server is listening). */
  ready?: () => boolean;
}

export type ApiApp = express.Express & { /** Detaches from the store (listeners). */ dispose(): void };

const noRules = (store: Store): RuleStatusSource => ({
  status: (): RuleServerStatus => ({ version: "", revision: store.current().revision, nodes: [] }),
});
const noTraffic: TrafficSource = {
  summary: (group: string, windowMs: number): TrafficSummary => ({ group, windowMs, services: [], edge: [] }),
};

const DEFAULT_WINDOW = "60s";

const PreviewBody = z.strictObject({
  group: z.string().min(1),
  service: z.string().min(1),
  request: z.strictObject({
    method: z.string().regex(/^[A-Za-z]+$/, "must be an HTTP method").optional(),
    path: z.string().startsWith("/", "must start with /").optional(),
    headers: z.record(z.string().regex(/^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, "must be a valid HTTP header name"), z.string()).optional(),
  }).optional(),
});
const RollbackBody = z.strictObject({ revision: z.number().int().min(1) });

/** zod issues → the API's error shape. */
function zodErrors(e: z.ZodError): HttpError {
  return new HttpError(400, e.issues.map((i) => ({ path: pointer(i.path), message: i.message })));
}

/**
 * If-Match / If-None-Match → the store's precondition. ETags are revisions, quoted or bare, weak
 * or strong; a list matches when any entry is the current ETag. An entry that is no ETag at all
 * can never match, so it fails the precondition (412), as RFC 9110 says.
 */
function precondition(req: Request, current: number): Expected | undefined {
  const ifMatch = req.get("if-match");
  if (ifMatch !== undefined) {
    const tags = ifMatch.split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.includes("*")) return "*";
    const revs = tags.map((t) => /^(?:W\/)?"?(\d+)"?$/.exec(t)).map((m) => (m ? Number(m[1]) : -1));
    if (revs.includes(current) && current > 0) return current;
    return revs.find((r) => r > 0) ?? -1;
  }
  if (req.get("if-none-match")?.trim() === "*") return 0;
  return undefined;
}

function intParam(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw fail(400, `must be an integer from ${min} to ${max}`, `/${name}`);
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function createApi(opts: ApiOptions): ApiApp {
  const { store } = opts;
  const rules = opts.rules ?? noRules(store);
  const traffic = opts.traffic ?? noTraffic;
  const registry = opts.registry ?? new Registry();
  const metrics = apiMetrics(registry, store);
  const previewer = new Previewer(opts.wasmPath);
  const document = openApiDocument({ ...(opts.releases && releaseOpenApi), ...overrideOpenApi });

  // Count every revision this process commits, whoever wrote it (API, rollout engine, ...).
  const unsubscribe = store.onChange((n) => {
    const r = store.revisions({ before: n + 1, limit: 1 })[0];
    if (r?.revision === n) metrics.revisions.inc({ op: r.op });
  });

  const app = express() as ApiApp;
  app.dispose = unsubscribe;
  app.disable("x-powered-by");
  app.set("etag", false); // ETags are revisions, set explicitly
  app.set("json spaces", 2);

  app.use((req, res, next) => {
    const end = metrics.duration.startTimer();
    res.on("finish", () => {
      const route = (req.route?.path as string | undefined) ?? "unmatched";
      metrics.requests.inc({ method: req.method, route, code: String(res.statusCode) });
      end({ method: req.method, route });
    });
    next();
  });
  if (opts.tokens && opts.tokens.size > 0) app.use(authenticate(opts.tokens));
  // Any content type is read as JSON: `curl -d` sends form-encoded by default.
  app.use(express.json({ type: () => true, limit: BODY_LIMIT }));

  // ---- lane groups ----

  app.get("/v1/lanegroups", (_req, res) => {
    const { revision } = store.current();
    // Each with its configured share per lane (compile/shares.ts), so the dashboard never recomputes it.
    res.json({ revision, lanegroups: store.list().map((g) => ({ revision: g.revision, lanegroup: g.lanegroup, configuredShares: configuredShares(g.lanegroup) })) });
  });

  app.get("/v1/lanegroups/:name", (req, res) => {
    const g = store.get(req.params.name);
    if (!g) throw fail(404, `lane group ${req.params.name} does not exist`);
    res.set("ETag", `"${g.revision}"`);
    const inm = req.get("if-none-match");
    if (inm !== undefined && inm.split(",").some((t) => t.trim().replace(/^W\//, "").replace(/"/g, "") === String(g.revision))) {
      res.status(304).end();
      return;
    }
    const overlay = opts.overlays?.(g.name);
    res.json({ revision: g.revision, lanegroup: g.lanegroup, ...(overlay && Object.keys(overlay).length ? { releaseOverlay: overlay } : {}) });
  });

  app.put("/v1/lanegroups/:name", async (req, res) => {
    const name = req.params.name;
    if (!isObject(req.body)) throw fail(400, "the body must be a lane group (a JSON object)");
    // A body without a name takes the URL's; one with another name is refused.
    const body = req.body.name === undefined ? { ...req.body, name } : req.body;
    if (body.name !== name) {
      const errors: FieldError[] = [{ path: "/name", message: `must equal the name in the URL (${JSON.stringify(name)})` }];
      const v = store.validate(body);
      if (!v.ok) errors.push(...v.errors.filter((e) => e.path !== "/name"));
      throw new HttpError(400, errors);
    }
    const expected = precondition(req, store.get(name)?.revision ?? 0);
    const r = await store.put(body, { actor: actorOf(req), expectedRevision: expected });
    res.status(r.created ? 201 : 200).set("ETag", `"${r.revision}"`);
    if (r.created) res.location(`/v1/lanegroups/${encodeURIComponent(name)}`);
    res.json({ revision: r.revision, lanegroup: r.group.lanegroup });
  });

  app.delete("/v1/lanegroups/:name", async (req, res) => {
    const name = req.params.name;
    const current = store.get(name);
    if (!current) throw fail(404, `lane group ${name} does not exist`);
    const r = await store.delete(name, { actor: actorOf(req), expectedRevision: precondition(req, current.revision) });
    res.json({ revision: r.revision });
  });

  // ---- revisions ----

  app.get("/v1/revisions", (req, res) => {
    const limit = intParam(req.query.limit, "limit", 1, 1000) ?? 100;
    const before = intParam(req.query.before, "before", 1);
    const group = typeof req.query.group === "string" && req.query.group ? req.query.group : undefined;
    const revisions = store.revisions({ limit, before, group });
    const last = revisions.at(-1);
    res.json(revisions.length === limit && last && last.revision > 1 ? { revisions, next: last.revision } : { revisions });
  });

  app.get("/v1/revisions/:n", (req, res) => {
    const n = /^\d+$/.test(req.params.n) ? Number(req.params.n) : NaN;
    const r = Number.isSafeInteger(n) ? store.revision(n) : undefined;
    if (!r) throw fail(404, `revision ${req.params.n} does not exist`);
    res.json(r);
  });

  app.post("/v1/rollback", async (req, res) => {
    const parsed = RollbackBody.safeParse(req.body);
    if (!parsed.success) throw zodErrors(parsed.error);
    const target = parsed.data.revision;
    const r = await store.rollback(target, { actor: actorOf(req) });
    res.json({ revision: r.revision, target, groups: r.groups });
  });

  // ---- preview, status, traffic ----

  app.post("/v1/preview", async (req, res) => {
    const parsed = PreviewBody.safeParse(req.body);
    if (!parsed.success) throw zodErrors(parsed.error);
    const { group, service, request } = parsed.data;
    const stored = store.get(group);
    if (!stored) throw fail(404, `lane group ${group} does not exist`, "/group");
    res.json(await previewer.preview(stored, service, {
      method: request?.method ?? "GET",
      path: request?.path ?? "/",
      headers: request?.headers ?? {},
    }));
  });

  // Nodes of this replica's subscribers, paged (10,000 subscribers are megabytes); every replica's
  // subscribers in numbers (summary: all of them together; replicas: each, from the etcd board).
  app.get("/v1/status", async (req, res) => {
    const limit = intParam(req.query.limit, "limit", 1, 10_000) ?? 1000;
    const offset = intParam(req.query.offset, "offset", 0, Number.MAX_SAFE_INTEGER) ?? 0;
    const st = rules.status();
    const replicas = opts.replicas ? await opts.replicas() : undefined;
    const summary = replicas ? sumSummaries(replicas) : rules.summary?.();
    res.json({
      ...st,
      nodes: st.nodes.slice(offset, offset + limit),
      page: { offset, limit, nodes: st.nodes.length },
      ...(summary && { summary }),
      ...(replicas && { replicas }),
    });
  });

  // Fresh counters on demand (tests, analysis): asks every connected filter to report now.
  app.post("/v1/traffic/report-now", (_req, res) => {
    res.status(202).json({ requested: rules.requestReports?.() ?? 0 });
  });

  app.get("/v1/traffic", async (req, res) => {
    const route = opts.trafficLeader?.();
    if (route && !route.self && route.url) {
      const auth = req.get("authorization");
      const up = await fetch(route.url + req.originalUrl, { headers: auth ? { authorization: auth } : {}, signal: AbortSignal.timeout(10_000) })
        .catch((e: Error) => { throw fail(503, `the active replica at ${route.url} does not answer: ${e.message}`); });
      res.status(up.status).type("application/json").send(await up.text());
      return;
    }
    const group = req.query.group;
    if (typeof group !== "string" || !group) throw fail(400, "the group query parameter is required", "/group");
    const w = req.query.window;
    const windowText = typeof w === "string" && w ? w : DEFAULT_WINDOW;
    const windowMs = parseDuration(windowText);
    if (windowMs === undefined) throw fail(400, `invalid duration ${JSON.stringify(windowText)} (like 60s, 5m, 1h)`, "/window");
    res.json(traffic.summary(group, windowMs));
  });

  // ---- operations ----

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  app.get("/readyz", async (_req, res) => {
    const problems: FieldError[] = [];
    if (!(await store.ping())) problems.push({ path: "", message: "the store does not answer" });
    if (opts.ready && !opts.ready()) problems.push({ path: "", message: "not ready" });
    if (problems.length) res.status(503).json({ errors: problems });
    else res.json({ status: "ready" });
  });

  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });

  app.get("/openapi.json", (_req, res) => {
    res.json(document);
  });

  // The dashboard: `/` and `/dashboard/*`, a router of its own (static pages stay out of /openapi.json).
  app.use(dashboardRouter());

  if (opts.releases) app.use(releaseRoutes(opts.releases.engine, { store, traffic: opts.traffic, leader: opts.releases.leader }));
  app.use(overrideRoutes(opts.overrideKey, store, opts.now));
  app.use(notFound);
  app.use(errorHandler);
  return app;
}

/** Every replica's subscribers together. */
function sumSummaries(replicas: readonly SubscriberSummary[]): SubscriberSummary {
  const out: SubscriberSummary = { connected: 0, atVersion: 0, pending: 0, nacked: 0, byVersion: {} };
  for (const r of replicas) {
    out.connected += r.connected;
    out.atVersion += r.atVersion;
    out.pending += r.pending;
    out.nacked += r.nacked;
    for (const [v, n] of Object.entries(r.byVersion)) out.byVersion[v] = (out.byVersion[v] ?? 0) + n;
  }
  return out;
}
