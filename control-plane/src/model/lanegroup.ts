// The lane group resource (DESIGN.md): zod schema, defaults, and every rule checked before anything
// is stored or compiled. All problems are reported at once, each with its JSON Pointer.
//
// The schemas are the one description of the resource: `LaneGroupInput` is what a user writes
// (PUT's body, defaults optional) and `LaneGroupSchema` what parseLaneGroup answers and the API
// serves (every default filled in); the LaneGroup type is the latter's z.output, and /openapi.json
// derives both of its lane group schemas from them with z.toJSONSchema (api/openapi.ts).
import { z } from "zod";
import { DEFAULT_STATE_CAP, RegexError, regexTables } from "./regex.js";
import { pointer, type FieldError } from "./errors.js";

export type { FieldError } from "./errors.js";

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
// A DNS name (labels of letters, digits, hyphens, underscores), an IPv4 address or a bracketed IPv6
// address; no port: the filter compares the :authority without its port.
const HOST = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$|^\[[0-9A-Fa-f:.]+\]$/;
// RFC 7230 token: header names.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// Bounds on every list and free string: what REST, the CRDs (kube/crds.ts) and the docs say comes
// from here, so a group the API server admits is never refused by REST for its size, or the reverse.
export const LIMITS = { services: 4096, hosts: 64, paths: 64, lanes: 64, matchBlocks: 64, entries: 64, list: 16, namespaces: 256, value: 4096, token: 256, host: 253, path: 1024 } as const;
const most = (n: number, what: string) => `at most ${n} ${what}`;

const name = z.string().regex(NAME, "must be 1-63 lowercase letters, digits or hyphens, starting with a letter");
const headerName = z.string().max(LIMITS.token, most(LIMITS.token, "characters")).regex(TOKEN, "must be a valid HTTP header name (RFC 7230 token)");

// Regexes are compiled while parsing, so their errors come with every other structural problem.
// The state cap of the parse under way (parsing is synchronous; see parseLaneGroup's options).
let stateCap = DEFAULT_STATE_CAP;
const value = z.string().max(LIMITS.value, most(LIMITS.value, "characters"));
const regex = z.string().max(LIMITS.value, most(LIMITS.value, "characters")).superRefine((source, ctx) => {
  try { regexTables(source, { stateCap }); } catch (e) {
    ctx.addIssue({ code: "custom", message: e instanceof RegexError ? e.message : `regex ${JSON.stringify(source)}: ${String(e)}` });
  }
});

const present = (o: object) => Object.values(o).filter((v) => v !== undefined).length;

const StringMatch = z.strictObject({
  exact: value.optional(),
  prefix: value.optional(),
  regex: regex.optional(),
  present: z.literal(true).optional(),
  absent: z.literal(true).optional(),
}).refine((m) => present(m) === 1, "must have exactly one of exact, prefix, regex, present, absent")
  .meta({ description: "Exactly one of exact, prefix, regex (full match, JavaScript RegExp syntax, the subset docs/decisions.md lists, plus a leading (?i)), present, absent", minProperties: 1, maxProperties: 1 });

const UriMatch = z.strictObject({
  exact: value.optional(),
  prefix: value.optional(),
  regex: regex.optional(),
}).refine((m) => present(m) === 1, "must have exactly one of exact, prefix, regex")
  .meta({ description: "Exactly one of exact, prefix, regex", minProperties: 1, maxProperties: 1 });

export const OS_CLASSES = ["iOS", "Android", "Windows", "macOS", "Linux"] as const;
export const BROWSER_CLASSES = ["Chrome", "Edge", "Firefox", "Safari", "IE"] as const;

// Header names are checked here rather than as record keys, so the error says what is wrong.
const entries = (what: string) => (r: object) => Object.keys(r).length <= LIMITS.entries || `at most ${LIMITS.entries} ${what}`;
const headerMatches = z.record(z.string(), StringMatch).superRefine((r, ctx) => {
  const many = entries("headers")(r);
  if (many !== true) ctx.addIssue({ code: "custom", message: many });
  for (const key of Object.keys(r)) {
    if (!TOKEN.test(key)) ctx.addIssue({ code: "custom", path: [key], message: "must be a valid HTTP header name (RFC 7230 token)" });
  }
}).meta({ maxProperties: LIMITS.entries });

const MatchBlock = z.strictObject({
  headers: headerMatches.optional(),
  cookies: z.record(z.string().min(1), StringMatch).refine((r) => entries("cookies")(r) === true, most(LIMITS.entries, "cookies")).meta({ maxProperties: LIMITS.entries }).optional(),
  queryParams: z.record(z.string().min(1), StringMatch).refine((r) => entries("query parameters")(r) === true, most(LIMITS.entries, "query parameters")).meta({ maxProperties: LIMITS.entries }).optional(),
  uri: UriMatch.optional(),
  method: z.array(z.string().max(LIMITS.token).regex(TOKEN, "must be an HTTP method")).min(1).max(LIMITS.list, most(LIMITS.list, "methods")).optional(),
  os: z.array(z.enum(OS_CLASSES)).min(1).max(LIMITS.list, most(LIMITS.list, "entries")).optional(),
  browser: z.array(z.enum(BROWSER_CLASSES)).min(1).max(LIMITS.list, most(LIMITS.list, "entries")).optional(),
}).refine((b) => present(b) > 0, "a match block needs at least one condition")
  .meta({ description: "All conditions of a block must hold; a lane matches when any of its blocks holds", minProperties: 1 });

// Kubernetes label keys ([prefix/]name) and values, for workload discovery and DestinationRule subsets.
const labelKey = z.string().max(317, most(317, "characters"))
  .regex(/^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, "must be a Kubernetes label key ([prefix/]name)");
const labelValue = z.string().max(63, most(63, "characters"))
  .regex(/^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, "must be a Kubernetes label value");
const podLabels = z.record(labelKey, labelValue).refine((r) => Object.keys(r).length >= 1 && Object.keys(r).length <= 16, "1 to 16 labels")
  .meta({ minProperties: 1, maxProperties: 16 });

const laneServices = z.array(name).max(LIMITS.services, most(LIMITS.services, "services")).meta({ description: "Services with an instance in this lane" });
const fallback = name.meta({ description: "Lane to route to where this lane has no instance (default: the base lane)" });
const WEIGHT = "Percent of sticky keys; all weights add up to at most 100";

const Lane = z.strictObject({
  name,
  services: laneServices.default([]),
  fallback: fallback.optional(),
  weight: z.number().min(0, "must be from 0 to 100").max(100, "must be from 0 to 100")
    .refine((w) => Math.abs(w * 100 - Math.round(w * 100)) < 1e-6, "at most two decimals").default(0)
    .meta({ description: `${WEIGHT}, with at most two decimals`, multipleOf: 0.01 }),
  match: z.array(MatchBlock).max(LIMITS.matchBlocks, most(LIMITS.matchBlocks, "match blocks")).optional(),
  labels: podLabels.optional()
    .meta({ description: "Pod labels of this lane's instances (default {<laneLabelKey>: <lane name>}): its DestinationRule subset, and with autoLanes the workloads that put a service in the lane, e.g. {\"ASM_TRAFFIC_TAG\": \"canary\"}" }),
});

const HOSTS = "Default: the service's name; unique across all lane groups";
const Service = z.strictObject({
  name,
  hosts: z.array(z.string().max(LIMITS.host, most(LIMITS.host, "characters")).regex(HOST, "must be a host name or IP address without port")).max(LIMITS.hosts, most(LIMITS.hosts, "hosts")).optional().meta({ description: HOSTS }),
  paths: z.array(z.string().max(LIMITS.path, most(LIMITS.path, "characters")).startsWith("/", "must start with /")).max(LIMITS.paths, most(LIMITS.paths, "paths")).default([]).meta({ description: "Path prefixes that select the service at the edge" }),
  protocol: z.enum(["http", "grpc"], { error: "must be \"http\" or \"grpc\"" }).optional()
    .meta({ description: "The service's protocol for generated mesh configuration (absent: http): grpc gets HTTP/2 upstream clusters in Envoy configs and h2UpgradePolicy UPGRADE in its DestinationRule. The filter tells gRPC requests by their content-type either way" }),
});

const StickyKey = z.strictObject({
  header: headerName.optional(),
  cookie: z.string().min(1).max(LIMITS.token, most(LIMITS.token, "characters")).regex(TOKEN, "must be a valid cookie name").optional(),
  generate: z.boolean().optional(),
  maxAgeSeconds: z.number().int().positive().max(0xffff_ffff).optional(),
}).refine((k) => (k.header === undefined) !== (k.cookie === undefined), "must have exactly one of header, cookie")
  .refine((k) => !k.generate || k.cookie !== undefined, "generate needs a cookie")
  .meta({ description: "Exactly one of header, cookie; generate (with a cookie) sets a generated id as that cookie when a request has none" });

const stickySalt = z.string().min(1).max(LIMITS.token, most(LIMITS.token, "characters")).meta({ description: "Default: the group's name" });

const Group = z.strictObject({
  name,
  services: z.array(Service).min(1, "a lane group needs at least one service").max(LIMITS.services, most(LIMITS.services, "services")),
  baseLane: name.default("base"),
  laneHeader: headerName.default("x-graylane-lane"),
  routeHeader: headerName.default("x-graylane-route"),
  overrideHeader: headerName.optional().meta({ description: "Overrides are off unless set" }),
  overrideTrust: z.enum(["any", "internal", "signed"]).default("any"),
  trustIncoming: z.boolean().default(false),
  traceHeader: headerName.default("x-request-id"),
  generateTraceId: z.boolean().default(true)
    .meta({ description: "At the edge, a request without traceHeader gets a new trace id first (never a sticky key)" }),
  isolation: z.enum(["permissive", "strict"], { error: "must be \"permissive\" or \"strict\"" }).default("permissive")
    .meta({ description: "strict: a request with no override, propagated lane or remembered trace that leaves an instance of a lane (not base) stays in that lane (decision step 3b)" }),
  stickySalt: stickySalt.optional(),
  stickyKey: StickyKey.optional(),
  lanes: z.array(Lane).max(LIMITS.lanes, most(LIMITS.lanes, "lanes")).default([]),
  autoLanes: z.boolean().optional()
    .meta({ description: "Kubernetes (the mesh controller): a lane also has every service of the group with an available Deployment or ReplicaSet whose pod template carries the lane's labels; kept in status and the RuleSet, never written into the spec" }),
  laneLabelKey: labelKey.optional().meta({ description: "The pod label naming an instance's lane (default graylane.io/lane)" }),
  serviceLabelKey: labelKey.optional().meta({ description: "The pod label naming an instance's service (default app)" }),
  /** Namespaces whose filters receive this group when their identity is namespace-scoped; none: all. */
  namespaces: z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a Kubernetes namespace name")).min(1).max(LIMITS.namespaces, most(LIMITS.namespaces, "namespaces")).optional()
    .meta({ description: "Filters whose identity is scoped to a namespace receive this group only if it is listed; absent: every filter" }),
}).meta({ description: "A lane group as written (DESIGN.md): omitted fields take their defaults" });

// The group as parseLaneGroup answers it, stored and served: the input's shape with every default
// filled in. Only its type and JSON Schema are used (parsing goes through Group above).
const StoredLane = Lane.extend({
  services: laneServices,
  fallback,
  weight: z.number().min(0).max(100).meta({ description: WEIGHT }),
  match: z.array(MatchBlock).max(LIMITS.matchBlocks),
});
// A defaulted host is the service's name, which need not be a host name (it may end with a hyphen).
const StoredService = Service.extend({ hosts: z.array(z.string().max(LIMITS.host)).max(LIMITS.hosts).meta({ description: HOSTS }) });
const StoredGroup = Group.extend({
  services: z.array(StoredService).min(1).max(LIMITS.services),
  stickySalt,
  lanes: z.array(StoredLane).max(LIMITS.lanes),
}).meta({ description: "A lane group as stored and served (DESIGN.md): every default filled in" });

/** The lane group as users write it (PUT's body): its zod schema, for its JSON Schema (io "input"). */
export const LaneGroupInput = Group;
/** The lane group as stored and served, every default filled in (io "output"). */
export const LaneGroupSchema = StoredGroup;
/** The parts with a name of their own in /openapi.json, request side (io "input") and response side (io "output"). */
export const laneGroupComponents = {
  input: { LaneGroupInput: Group, LaneInput: Lane, ServiceInput: Service, MatchBlock, StringMatch, UriMatch, StickyKey },
  output: { LaneGroup: StoredGroup, Lane: StoredLane, Service: StoredService, MatchBlock, StringMatch, UriMatch, StickyKey },
};

export type StringMatch = z.infer<typeof StringMatch>;
export type UriMatch = z.infer<typeof UriMatch>;
export type MatchBlock = z.infer<typeof MatchBlock>;
export type OsClass = (typeof OS_CLASSES)[number];
export type BrowserClass = (typeof BROWSER_CLASSES)[number];
/** A lane group as parseLaneGroup answers it: every default filled in. */
export type LaneGroup = z.output<typeof StoredGroup>;

export type ParseResult = { ok: true; value: LaneGroup } | { ok: false; errors: FieldError[] };

/** Services whose hosts were defaulted by the parse (their input had no `hosts`). */
const defaultedHosts = new WeakSet<object>();

function semantic(g: LaneGroup): FieldError[] {
  const errors: FieldError[] = [];
  const err = (path: Array<PropertyKey>, message: string) => errors.push({ path: pointer(path), message });

  const services = new Set<string>();
  const hosts = new Map<string, string>();
  g.services.forEach((s, i) => {
    if (services.has(s.name)) err(["services", i, "name"], `duplicate service ${s.name}`);
    services.add(s.name);
    s.hosts.forEach((h, j) => {
      const host = h.toLowerCase();
      if (!hosts.has(host)) hosts.set(host, s.name);
      // A defaulted host (the service's name) has no place in the input: point at the name.
      else if (defaultedHosts.has(s)) err(["services", i, "name"], `the default host ${h} of service ${s.name} is already a host of service ${hosts.get(host)}`);
      else err(["services", i, "hosts", j], `host ${h} is already a host of service ${hosts.get(host)}`);
    });
  });

  const lanes = new Map<string, number>();
  let sum = 0;
  g.lanes.forEach((l, i) => {
    if (l.name === g.baseLane) err(["lanes", i, "name"], `${l.name} is the base lane, which is implicit`);
    else if (lanes.has(l.name)) err(["lanes", i, "name"], `duplicate lane ${l.name}`);
    lanes.set(l.name, i);
    sum += l.weight;
    l.services.forEach((s, j) => { if (!services.has(s) && !s.startsWith(PLACEHOLDER)) err(["lanes", i, "services", j], `unknown service ${s}`); });
  });
  if (sum > 100 + 1e-9) err(["lanes"], `weights add up to ${Math.round(sum * 100) / 100}, more than 100`);

  g.lanes.forEach((l, i) => {
    if (l.fallback !== g.baseLane && !lanes.has(l.fallback)) {
      err(["lanes", i, "fallback"], `unknown lane ${l.fallback}`);
      return;
    }
    const seen = new Set<string>([l.name]);
    for (let at = l.fallback; at !== g.baseLane;) {
      if (seen.has(at)) { err(["lanes", i, "fallback"], `fallback chain loops: ${[...seen, at].join(" -> ")}`); break; }
      seen.add(at);
      const next = g.lanes[lanes.get(at)!]?.fallback;
      if (next === undefined || (next !== g.baseLane && !lanes.has(next))) break; // reported on that lane
      at = next;
    }
  });
  return errors;
}

/**
 * A best-effort LaneGroup of input that failed the schema, for the cross-field checks only: each
 * malformed part becomes a placeholder that triggers no error of its own (the schema reported it).
 */
const PLACEHOLDER = "\u0000";

function looseGroup(input: unknown): LaneGroup | undefined {
  if (!isObject(input)) return undefined;
  const str = (v: unknown, placeholder: string) => (typeof v === "string" ? v : placeholder);
  const list = (v: unknown) => (Array.isArray(v) ? v : []);
  const baseLane = str(input.baseLane, "base");
  const services = list(input.services).map((s, i) => {
    const o = isObject(s) ? s : {};
    const name = str(o.name, `${PLACEHOLDER}service-${i}`);
    const hosts = o.hosts === undefined ? [name] : list(o.hosts).map((h, j) => str(h, `${PLACEHOLDER}host-${i}-${j}`));
    const service = { name, hosts, paths: [] };
    if (o.hosts === undefined) defaultedHosts.add(service);
    return service;
  });
  const lanes = list(input.lanes).map((l, i) => {
    const o = isObject(l) ? l : {};
    const weight = typeof o.weight === "number" && o.weight >= 0 && o.weight <= 100 ? o.weight : 0;
    return {
      name: str(o.name, `${PLACEHOLDER}lane-${i}`),
      services: list(o.services).map((s, j) => str(s, `${PLACEHOLDER}service-${i}-${j}`)),
      fallback: str(o.fallback, baseLane),
      weight,
      match: [],
    };
  });
  return {
    name: "", services, baseLane, laneHeader: "", routeHeader: "", overrideTrust: "any", trustIncoming: false,
    traceHeader: "", generateTraceId: true, isolation: "permissive", stickySalt: "", lanes,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A zod issue as FieldErrors: an unknown field is reported at its own path, one error per field. */
function fieldErrors(issue: z.core.$ZodIssue): FieldError[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({ path: pointer([...issue.path, key]), message: `unknown field ${key}` }));
  }
  return [{ path: pointer(issue.path), message: issue.message }];
}

export interface ParseOptions {
  /** State cap for regexes (default DEFAULT_STATE_CAP), as the compiler will use it. */
  stateCap?: number;
}

export function parseLaneGroup(input: unknown, opts: ParseOptions = {}): ParseResult {
  stateCap = opts.stateCap ?? DEFAULT_STATE_CAP;
  let parsed: ReturnType<typeof Group.safeParse>;
  try { parsed = Group.safeParse(input); } finally { stateCap = DEFAULT_STATE_CAP; }
  if (!parsed.success) {
    const errors = parsed.error.issues.flatMap(fieldErrors);
    // Still report the cross-field problems of whatever parts are well-formed.
    const loose = looseGroup(input);
    if (loose) {
      const seen = new Set(errors.map((e) => e.path));
      for (const e of semantic(loose)) if (!seen.has(e.path)) errors.push(e);
    }
    return { ok: false, errors };
  }
  const g = parsed.data;
  const value: LaneGroup = {
    ...g,
    stickySalt: g.stickySalt ?? g.name,
    services: g.services.map((s) => {
      const service = { name: s.name, hosts: s.hosts ?? [s.name], paths: s.paths, ...(s.protocol ? { protocol: s.protocol } : {}) };
      if (s.hosts === undefined) defaultedHosts.add(service);
      return service;
    }),
    lanes: g.lanes.map((l) => ({ name: l.name, services: l.services, fallback: l.fallback ?? g.baseLane, weight: l.weight, match: l.match ?? [], ...(l.labels ? { labels: l.labels } : {}) })),
  };
  if (value.overrideHeader === undefined) delete value.overrideHeader;
  if (value.namespaces === undefined) delete value.namespaces;
  if (value.stickyKey === undefined) delete value.stickyKey;
  else if (value.stickyKey.generate && value.stickyKey.maxAgeSeconds === undefined) value.stickyKey = { ...value.stickyKey, maxAgeSeconds: 2_592_000 };
  const errors = semantic(value);
  return errors.length ? { ok: false, errors } : { ok: true, value };
}

/**
 * A lane group as a store read it back: written by this or an earlier version, so fields added
 * since (and their defaults) may be missing. Re-parsed through the model, so every default added
 * later applies to old rows (a group stored before `generateTraceId` existed reads with true). A
 * stored group that today's rules refuse is returned as it was: the store keeps what it has, and
 * the next write of it meets the rules.
 */
export function storedLaneGroup(stored: LaneGroup): LaneGroup {
  const r = parseLaneGroup(stored);
  return r.ok ? r.value : stored;
}

/** Rules across groups: unique names, a service in one group only, hosts unique everywhere. */
export function validateLaneGroups(groups: LaneGroup[]): FieldError[] {
  const errors: FieldError[] = [];
  const names = new Map<string, number>();
  const services = new Map<string, string>();
  const hosts = new Map<string, string>();
  const paths = new Map<string, string>();
  groups.forEach((g, gi) => {
    if (names.has(g.name)) errors.push({ path: pointer([gi, "name"]), message: `duplicate lane group ${g.name}` });
    names.set(g.name, gi);
    g.services.forEach((s, si) => {
      const owner = services.get(s.name);
      if (owner !== undefined && owner !== g.name) errors.push({ path: pointer([gi, "services", si, "name"]), message: `service ${s.name} already belongs to lane group ${owner}` });
      services.set(s.name, g.name);
      s.hosts.forEach((h, hi) => {
        const host = h.toLowerCase();
        const other = hosts.get(host);
        if (other !== undefined && other !== `${g.name}/${s.name}`) errors.push({ path: pointer([gi, "services", si, "hosts", hi]), message: `host ${h} already routes to ${other}` });
        hosts.set(host, `${g.name}/${s.name}`);
      });
      // An edge path prefix selects one service: the same prefix on two services would be a tie.
      s.paths.forEach((p, pi) => {
        const other = paths.get(p);
        if (other !== undefined && other !== `${g.name}/${s.name}`) errors.push({ path: pointer([gi, "services", si, "paths", pi]), message: `path ${p} already routes to ${other}` });
        paths.set(p, `${g.name}/${s.name}`);
      });
    });
  });
  return errors;
}
