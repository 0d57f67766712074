// Fuzzing support (test/unit/fuzz.test.ts): fast-check arbitraries for random valid lane groups and
// adversarial requests, and the oracle's view of a request (how the filter finds headers, hosts,
// path prefixes and the baggage lane member), written from DESIGN.md and the README, byte for byte.
import fc from "fast-check";
import { BROWSER_CLASSES, OS_CLASSES } from "../../control-plane/src/model/lanegroup.js";

// ---------------------------------------------------------------- lane groups

const GROUP_WORDS = ["mock", "shop", "pay", "g", "a-b", "x9"];
const SERVICE_WORDS = ["web", "api", "db", "cart", "s"];
const LANE_WORDS = ["canary", "gray", "dev", "blue", "green", "v2", "beta", "x"];
const BASE_WORDS = ["base", "stable", "prod"];
const LANE_HEADERS = ["x-graylane-lane", "x-lane", "X-Lane-Name", "l"];
const ROUTE_HEADERS = ["x-graylane-route", "x-route", "X-Route-To"];
const OVERRIDE_HEADERS = ["x-asm-prefer-tag", "x-lane-override", "X-Override", "x-graylane-lane"];
const TRACE_HEADERS = ["x-request-id", "my-request-id", "traceparent", "x-b3-traceid"];
const STICKY_HEADERS = ["x-user-id", "x-session", "my-request-id"];
const COOKIE_NAMES = ["uid", "session", "beta", "_ga", "graylane", "a b", "é", "lane"];
const QUERY_NAMES = ["beta", "v", "lane", "q", "a[]", "é"];
const MATCH_HEADERS = ["grayrelease", "x-env", "X-Beta", "x-user-id", "user-agent", "x-graylane-lane", "cookie"];
const MATCH_VALUES = ["version2", "1", "on", "", "canary", "ü", "a b", "x".repeat(40)];
/** Strings some of the regexes below match. */
const REGEX_HITS = ["1234", "v12", "xcanaryx", "abc", "ababc", "c", "aab", "foo", "x@y", "xx", "ab", "Abc", "version7", "12", "a/b"];
const PATHS = ["/", "/api", "/mock", "/shop/v2", "/api/v1/items"];
export const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "BREW"];
const REGEXES = ["1[0-9]{3}", "v[0-9]+", ".*canary.*", "[a-z]+", "(a|b)*c", "", ".", "\\d+", "[^x]*", "^abc$", "a?b+c*",
  "\\.", "x{2,5}", "[A-Z][a-z]*", "(foo|bar|baz)", ".{0,3}", "\\w+@\\w+", "\\S*", "a|", "(a*)*b", "version[0-9]"];
const ATOMS = ["a", "b", "[0-9]", "[a-z]", ".", "\\d", "x", "(ab|c)", "[^/]"];
const QUANTIFIERS = ["", "", "*", "+", "?", "{1,3}"];

/** A small regex from a grammar (at most 4 quantified atoms, maybe an alternation): DFAs stay small. */
const regexArb = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...REGEXES) },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.array(fc.tuple(fc.constantFrom(...ATOMS), fc.constantFrom(...QUANTIFIERS)), { minLength: 1, maxLength: 4 }),
      fc.option(fc.constantFrom(...ATOMS), { nil: undefined }),
    ).map(([parts, alt]) => parts.map(([a, q]) => a + q).join("") + (alt ? "|" + alt : "")),
  },
);

const stringMatchArb = fc.oneof(
  fc.constantFrom(...MATCH_VALUES, ...LANE_WORDS).map((v) => ({ exact: v })),
  fc.constantFrom(...MATCH_VALUES).map((v) => ({ prefix: v })),
  regexArb.map((v) => ({ regex: v })),
  fc.constant({ present: true as const }),
  fc.constant({ absent: true as const }),
);

const uriMatchArb = fc.oneof(
  fc.constantFrom(...PATHS).map((v) => ({ exact: v })),
  fc.constantFrom(...PATHS).map((v) => ({ prefix: v })),
  fc.constantFrom("/api/.*", "/[a-z]+", "/mock(/.*)?", ".*v2.*").map((v) => ({ regex: v })),
);

const dict = <T>(keys: string[], value: fc.Arbitrary<T>) =>
  fc.uniqueArray(fc.tuple(fc.constantFrom(...keys), value), { minLength: 1, maxLength: 2, selector: ([k]) => k })
    .map((pairs) => Object.fromEntries(pairs));

const CONDITION_KINDS = ["headers", "cookies", "queryParams", "uri", "method", "os", "browser"] as const;

/** A match block of one or two conditions (more would rarely hold). */
const matchBlockArb = fc.tuple(fc.record({
  headers: dict(MATCH_HEADERS, stringMatchArb),
  cookies: dict(COOKIE_NAMES, stringMatchArb),
  queryParams: dict(QUERY_NAMES, stringMatchArb),
  uri: uriMatchArb,
  method: fc.subarray(METHODS.filter((m) => /^[A-Za-z]+$/.test(m)), { minLength: 1 }),
  os: fc.subarray([...OS_CLASSES], { minLength: 1 }),
  browser: fc.subarray([...BROWSER_CLASSES], { minLength: 1 }),
}), fc.subarray([...CONDITION_KINDS], { minLength: 1, maxLength: 2 })).map(([b, kinds]) => Object.fromEntries(kinds.map((k) => [k, b[k]])));

const caseOf = (s: string, bits: number) =>
  [...s].map((c, i) => ((bits >> (i % 30)) & 1 ? c.toUpperCase() : c.toLowerCase())).join("");

/** Lane group JSON (the API's input shape) for group number `gi`; names carry `gi` so they are unique across groups. */
function groupArb(gi: number) {
  return fc.record({
    word: fc.constantFrom(...GROUP_WORDS),
    services: fc.uniqueArray(fc.constantFrom(...SERVICE_WORDS), { minLength: 1, maxLength: 4 }),
    hostStyles: fc.array(fc.tuple(fc.nat(4), fc.nat(1 << 20)), { minLength: 4, maxLength: 4 }),
    pathSets: fc.array(fc.subarray(PATHS, { maxLength: 2 }), { minLength: 4, maxLength: 4 }),
    baseLane: fc.option(fc.constantFrom(...BASE_WORDS), { nil: undefined }),
    laneHeader: fc.option(fc.constantFrom(...LANE_HEADERS), { nil: undefined }),
    routeHeader: fc.option(fc.constantFrom(...ROUTE_HEADERS), { nil: undefined }),
    overrideHeader: fc.option(fc.constantFrom(...OVERRIDE_HEADERS), { nil: undefined, freq: 3 }),
    overrideTrust: fc.option(fc.constantFrom("any", "internal", "signed"), { nil: undefined }),
    trustIncoming: fc.option(fc.boolean(), { nil: undefined }),
    traceHeader: fc.option(fc.constantFrom(...TRACE_HEADERS), { nil: undefined }),
    generateTraceId: fc.option(fc.boolean(), { nil: undefined }),
    isolation: fc.option(fc.constantFrom("permissive", "strict"), { nil: undefined }),
    stickySalt: fc.option(fc.string({ minLength: 1, maxLength: 8, unit: "grapheme" }), { nil: undefined, freq: 4 }),
    stickyKey: fc.option(fc.oneof(
      fc.constantFrom(...STICKY_HEADERS).map((header) => ({ header })),
      fc.record({
        cookie: fc.constantFrom("uid", "session", "gl"),
        generate: fc.option(fc.boolean(), { nil: undefined }),
        maxAgeSeconds: fc.option(fc.integer({ min: 1, max: 0xffff_ffff }), { nil: undefined }),
      }, { requiredKeys: ["cookie"] }).map((k) => (k.generate ? k : { cookie: k.cookie, ...(k.maxAgeSeconds ? { maxAgeSeconds: k.maxAgeSeconds } : {}) })),
    ), { nil: undefined }),
    lanes: fc.array(fc.record({
      services: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      fallback: fc.option(fc.nat(8), { nil: undefined }),
      weight: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: 1, max: 10_000 }) }),
      match: fc.option(fc.array(matchBlockArb, { minLength: 1, maxLength: 3 }), { nil: undefined, freq: 2 }),
    }), { maxLength: 4 }),
    laneWords: fc.shuffledSubarray(LANE_WORDS, { minLength: 4, maxLength: 4 }),
  }).map((r) => {
    const name = `${r.word}${gi}`;
    const services = r.services.map((w, j) => {
      const sname = `${name}-${w}`;
      const [style, bits] = r.hostStyles[j];
      const hosts = style === 0 ? undefined
        : style === 1 ? [sname, `${sname}.ns${gi}.svc.cluster.local`]
          : style === 2 ? [caseOf(`${sname}.Example`, bits)]
            : style === 3 ? [`10.${gi}.${j}.7`, `[fd00::${gi}:${j}]`]
              : [sname, caseOf(`h${gi}-${j}.x`, bits), `${sname}-alt`];
      return { name: sname, ...(hosts ? { hosts } : {}), ...(r.pathSets[j].length ? { paths: r.pathSets[j] } : {}) };
    });
    // Weights in hundredths, scaled down to add up to at most 100 %.
    const total = r.lanes.reduce((n, l) => n + l.weight, 0);
    const scale = total > 10_000 ? 10_000 / total : 1;
    const laneNames = r.laneWords.slice(0, r.lanes.length);
    const base = r.baseLane ?? "base";
    const lanes = r.lanes.map((l, i) => {
      const w = Math.floor(l.weight * scale);
      const fb = l.fallback === undefined ? undefined : l.fallback % (i + 1); // 0: base, k: an earlier lane (no loops)
      return {
        name: laneNames[i],
        services: services.filter((_, j) => l.services[j]).map((s) => s.name),
        ...(fb === undefined ? {} : { fallback: fb === 0 ? base : laneNames[fb - 1] }),
        ...(w > 0 ? { weight: w / 100 } : {}),
        ...(l.match ? { match: l.match } : {}),
      };
    });
    const g: Record<string, unknown> = { name, services, lanes };
    for (const k of ["baseLane", "laneHeader", "routeHeader", "overrideHeader", "overrideTrust", "trustIncoming", "traceHeader", "generateTraceId", "isolation", "stickySalt", "stickyKey"] as const) {
      if (r[k] !== undefined) g[k] = r[k];
    }
    return g;
  });
}

/** One to three groups: a RuleSet. */
export const groupsArb = fc.integer({ min: 1, max: 3 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => groupArb(i))))
  .map((groups) => {
    // An edge path prefix selects one service (the model refuses a prefix on two services).
    const taken = new Set<string>();
    for (const g of groups) {
      for (const svc of g.services as Array<{ paths?: string[] }>) {
        if (!svc.paths) continue;
        svc.paths = svc.paths.filter((p) => !taken.has(p));
        for (const p of svc.paths) taken.add(p);
        if (svc.paths.length === 0) delete svc.paths;
      }
    }
    return groups;
  });

// ---------------------------------------------------------------- requests

export type HeaderPair = [string | Uint8Array, string | Uint8Array];

export interface FuzzRequest {
  headers: HeaderPair[];
  /** Route metadata graylane.service (outbound and edge only); undefined: none. */
  routeService?: string;
  /** Response :status, or undefined: the stream ends without a response (reset). */
  status?: string;
}

/** What the request generator draws names and values from: the RuleSet's own names, so requests hit its rules. */
export interface RequestVocabulary {
  laneNames: string[];
  /** exact and prefix values of the RuleSet's conditions. */
  matchValues: string[];
  queryNames: string[];
  headerNames: string[];
  cookieNames: string[];
  hosts: string[];
  services: string[];
  paths: string[];
}

const USER_AGENTS = [
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0",
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
  "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; Trident/6.0)",
  "curl/8.5.0", "", "Android", "iPad", "Edg/", "Chrome/ Safari/ Firefox/ Trident/ Windows Linux Mac OS X",
];
const TRACE_IDS = ["t1", "t2", "t3", "10000", "abc", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "00-ffffffffffffffffffffffffffffffff-0000000000000000-01", "00-", "-".repeat(60)];
const FILLER_NAMES = ["x-filler", "accept", "content-type", "x-forwarded-for", "host", ":authority", ":path", ":method", "baggage", "cookie",
  "user-agent", "traceparent", "x-request-id", "my-request-id", "x-b3-traceid", "x-asm-prefer-tag", "X-ASM-PREFER-TAG"];

const bytesArb = fc.uint8Array({ maxLength: 24 });

/** A header value: lane names (exact and near misses), empty, unicode, raw bytes, rarely (1 in ~200) huge. */
function valueArb(v: RequestVocabulary): fc.Arbitrary<string | Uint8Array> {
  return fc.oneof(
    { weight: 80, arbitrary: fc.constantFrom(...v.laneNames) },
    { weight: 20, arbitrary: fc.tuple(fc.constantFrom(...v.laneNames), fc.constantFrom(" ", "\t", "x", ",", ";p=1", "="), fc.boolean(), fc.nat(1 << 20)).map(([l, s, before, bits]) => caseOf(before ? s + l : l + s, bits)) },
    { weight: 20, arbitrary: fc.constant("") },
    { weight: 30, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 10, arbitrary: fc.string({ maxLength: 12, unit: "grapheme" }) },
    { weight: 10, arbitrary: fc.string({ maxLength: 12, unit: "binary" }) },
    { weight: 20, arbitrary: bytesArb },
    { weight: 20, arbitrary: fc.constantFrom(...v.matchValues, ...MATCH_VALUES, ...REGEX_HITS, ...TRACE_IDS) },
    { weight: 1, arbitrary: hugeArb(v) },
  );
}

/** 8-64 KiB: one byte repeated, a lane name repeated, a long list of members, or "x"s. */
function hugeArb(v: RequestVocabulary): fc.Arbitrary<string | Uint8Array> {
  return fc.tuple(fc.integer({ min: 8 * 1024, max: 64 * 1024 }), fc.nat(3), fc.constantFrom(...v.laneNames), fc.integer({ min: 1, max: 255 })).map(([n, kind, lane, b]) =>
    kind === 0 ? new Uint8Array(n).fill(b)
      : kind === 1 ? `${lane}=`.repeat(Math.ceil(n / (lane.length + 1))).slice(0, n)
        : kind === 2 ? Array.from({ length: Math.ceil(n / 8) }, (_, i) => `k${i}=${lane}`).join(i2sep(b)).slice(0, n)
          : "x".repeat(n));
}
const i2sep = (b: number) => (b % 3 === 0 ? "," : b % 3 === 1 ? "; " : "&");

function cookieArb(v: RequestVocabulary): fc.Arbitrary<string | Uint8Array> {
  const pair = fc.tuple(fc.constantFrom(...v.cookieNames, "x", ""), valueArb(v).map(text), fc.constantFrom("=", "=", " = ", ""))
    .map(([k, val, eq]) => (eq ? k + eq + val : k));
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(pair, { maxLength: 5 }).map((ps) => ps.join("; ")) },
    { weight: 1, arbitrary: fc.constantFrom(";;=;uid", "uid", "=", "; ", "uid=1234;uid=5678", "a=1;b=2;uid=1234") },
    { weight: 1, arbitrary: valueArb(v) },
  );
}

function baggageArb(v: RequestVocabulary): fc.Arbitrary<string | Uint8Array> {
  const member = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom("graylane", "graylane", " graylane ", "Graylane", "graylanes", "k", "userId"), fc.constantFrom("=", " = ", ""), valueArb(v).map(text), fc.constantFrom("", "", ";p=1", " ;x", ";")).map(([k, eq, val, prop]) => (eq ? k + eq + val + prop : k + prop)) },
    { weight: 1, arbitrary: fc.constantFrom("", " ", ",", "=", "graylane=") },
  );
  return fc.oneof(
    { weight: 6, arbitrary: fc.array(member, { maxLength: 4 }).map((ms) => ms.join(",")) },
    { weight: 1, arbitrary: valueArb(v) },
  );
}

function pathArb(v: RequestVocabulary): fc.Arbitrary<string | Uint8Array> {
  const param = fc.tuple(fc.constantFrom(...v.queryNames, ...QUERY_NAMES, ""), fc.constantFrom("=", "=", ""), valueArb(v).map(text)).map(([k, eq, val]) => k + eq + val);
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.tuple(fc.constantFrom(...v.paths, "/", "/unknown", "/api/", "", "*"), fc.constantFrom("", "", "/x", "/v2/items"),
        fc.option(fc.array(param, { maxLength: 4 }), { nil: undefined }), fc.constantFrom("", "", "#frag", "?", "&&")).map(([p, tail, qs, end]) =>
        p + tail + (qs ? "?" + qs.join("&") : "") + end),
    },
    { weight: 1, arbitrary: valueArb(v) },
  );
}

function authorityArb(v: RequestVocabulary): fc.Arbitrary<string | Uint8Array> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...v.hosts), fc.nat(1 << 20), fc.constantFrom("", "", ":8080", ":", ":80x", ".", ":99999999999")).map(([h, bits, port]) => caseOf(h, bits) + port) },
    { weight: 2, arbitrary: fc.constantFrom("unknown", "unknown.svc:80", "", ":8080", "[::1]:80", "[fd00::0:0]") },
    { weight: 1, arbitrary: valueArb(v) },
  );
}

const text = (v: string | Uint8Array) => (typeof v === "string" ? v : Buffer.from(v).toString("latin1"));

/** Adversarial requests over the vocabulary of one RuleSet. */
export function requestArb(v: RequestVocabulary): fc.Arbitrary<FuzzRequest> {
  const nameArb = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...v.headerNames), fc.nat(1 << 20), fc.nat(3)).map(([n, bits, c]) => (c === 0 ? caseOf(n, bits) : n)) },
    { weight: 3, arbitrary: fc.constantFrom(...FILLER_NAMES) },
    { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9-]{1,10}$/) },
    { weight: 1, arbitrary: bytesArb.filter((b) => b.length > 0) },
  );
  const header: fc.Arbitrary<HeaderPair> = fc.oneof(
    { weight: 8, arbitrary: fc.tuple(nameArb, valueArb(v)) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom("cookie", "Cookie"), cookieArb(v)) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom("baggage", "Baggage"), baggageArb(v)) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("user-agent"), fc.oneof(fc.constantFrom(...USER_AGENTS), valueArb(v))) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(":authority", "host"), authorityArb(v)) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(":path"), pathArb(v)) },
  );
  return fc.record({
    method: fc.option(fc.oneof(fc.constantFrom(...METHODS), valueArb(v)), { nil: undefined, freq: 8 }),
    path: fc.option(pathArb(v), { nil: undefined, freq: 10 }),
    authority: fc.option(authorityArb(v), { nil: undefined, freq: 10 }),
    extra: fc.array(header, { maxLength: 10 }),
    shuffle: fc.nat(),
    routeService: fc.option(fc.constantFrom(...v.services, "unknown-svc", ""), { nil: undefined, freq: 2 }),
    status: fc.option(fc.constantFrom("200", "200", "200", "503", "404", "302", "100", "999", "abc", "2000", ""), { nil: undefined, freq: 12 }),
  }).map((r) => {
    const headers: HeaderPair[] = [];
    if (r.method !== undefined) headers.push([":method", r.method]);
    if (r.path !== undefined) headers.push([":path", r.path]);
    if (r.authority !== undefined) headers.push([":authority", r.authority]);
    // Extra headers go anywhere, pseudo-headers included (a rotation keeps it cheap).
    const at = r.extra.length ? r.shuffle % (r.extra.length + 1) : 0;
    headers.splice(at > headers.length ? headers.length : at, 0, ...r.extra);
    return { headers, routeService: r.routeService, status: r.status };
  });
}

export function vocabulary(groups: ParsedGroupLike[]): RequestVocabulary {
  const laneNames = new Set<string>();
  const matchValues = new Set<string>(["x"]);
  const queryNames = new Set<string>(["x"]);
  const headerNames = new Set<string>();
  const cookieNames = new Set<string>(["uid", "session", "gl"]);
  const hosts = new Set<string>();
  const services: string[] = [];
  const paths = new Set<string>();
  for (const g of groups) {
    laneNames.add(g.baseLane);
    for (const l of g.lanes) {
      laneNames.add(l.name);
      for (const b of l.match) {
        for (const h of Object.keys(b.headers ?? {})) headerNames.add(h);
        for (const c of Object.keys(b.cookies ?? {})) cookieNames.add(c);
        for (const q of Object.keys(b.queryParams ?? {})) queryNames.add(q);
        for (const m of [...Object.values(b.headers ?? {}), ...Object.values(b.cookies ?? {}), ...Object.values(b.queryParams ?? {})] as Array<{ exact?: string; prefix?: string }>) {
          if (m.exact !== undefined) matchValues.add(m.exact);
          if (m.prefix !== undefined) matchValues.add(m.prefix + "x");
        }
        const uri = (b as { uri?: { exact?: string; prefix?: string } }).uri;
        if (uri?.exact) paths.add(uri.exact);
        if (uri?.prefix) paths.add(uri.prefix + "/y");
      }
    }
    for (const h of [g.laneHeader, g.routeHeader, g.overrideHeader, g.traceHeader, g.stickyKey?.header]) if (h) headerNames.add(h);
    if (g.stickyKey?.cookie) cookieNames.add(g.stickyKey.cookie);
    for (const s of g.services) {
      services.push(s.name);
      for (const h of s.hosts) hosts.add(h);
      for (const p of s.paths) paths.add(p);
    }
  }
  laneNames.add("base");
  return { laneNames: [...laneNames], matchValues: [...matchValues], queryNames: [...queryNames], headerNames: [...headerNames, "baggage"], cookieNames: [...cookieNames], hosts: [...hosts], services, paths: [...paths, "/"] };
}

// ---------------------------------------------------------------- the oracle's view of a request

/** The parts of a parsed LaneGroup (control-plane/src/model) the oracle reads. */
export interface ParsedGroupLike {
  name: string;
  baseLane: string;
  laneHeader: string;
  routeHeader: string;
  overrideHeader?: string;
  overrideTrust: string;
  trustIncoming: boolean;
  traceHeader: string;
  generateTraceId: boolean;
  isolation: string;
  stickyKey?: { header?: string; cookie?: string; generate?: boolean };
  services: Array<{ name: string; hosts: string[]; paths: string[] }>;
  lanes: Array<{ name: string; services: string[]; fallback: string; weight: number; match: Array<{ headers?: object; cookies?: object; queryParams?: object }> }>;
}

const enc = new TextEncoder();
export const bytesOf = (v: string | Uint8Array): Uint8Array => (typeof v === "string" ? enc.encode(v) : v);
const lowerAscii = (b: Uint8Array) => b.map((c) => (c >= 65 && c <= 90 ? c + 32 : c));
const eq = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((c, i) => c === b[i]);
const eqIgnoreCase = (a: Uint8Array, b: Uint8Array) => eq(lowerAscii(a), lowerAscii(b));

/** A request's headers as bytes, names lower-cased (ASCII) like Envoy's and the host's header maps. */
export class View {
  readonly pairs: Array<[Uint8Array, Uint8Array]>;
  /** `lowered`: the names are lower-case bytes already (a host header map). */
  constructor(headers: ReadonlyArray<readonly [string | Uint8Array, string | Uint8Array]>, lowered = false) {
    this.pairs = lowered ? headers as Array<[Uint8Array, Uint8Array]> : headers.map(([n, v]) => [lowerAscii(bytesOf(n)), bytesOf(v)]);
  }
  /** First value named `name`, like RequestView.find. */
  first(name: string): Uint8Array | undefined {
    const n = lowerAscii(enc.encode(name));
    return this.pairs.find(([k]) => eq(k, n))?.[1];
  }
  all(name: string): Uint8Array[] {
    const n = lowerAscii(enc.encode(name));
    return this.pairs.filter(([k]) => eq(k, n)).map(([, v]) => v);
  }
  /** RequestView.header: the first value, when not empty. */
  header(name: string): Uint8Array | undefined {
    const v = this.first(name);
    return v && v.length > 0 ? v : undefined;
  }
  /** :authority (else host) without its port, as RequestView.setHost strips it. */
  host(): Uint8Array | undefined {
    const v = this.first(":authority") ?? this.first("host");
    if (!v) return undefined;
    let end = v.length;
    for (let i = v.length; i > 0; i--) {
      const c = v[i - 1];
      if (c === 58) { end = i - 1; break; }
      if (c < 48 || c > 57) break;
    }
    return v.subarray(0, end);
  }
  /** :path without its query string, or undefined without :path. */
  path(): Uint8Array | undefined {
    const v = this.first(":path");
    if (!v) return undefined;
    const q = v.indexOf(63);
    return q < 0 ? v : v.subarray(0, q);
  }
  /** The `graylane` baggage member as the filter reads it (first match across baggage headers); "" when empty. */
  baggageLane(): Uint8Array | undefined {
    for (const v of this.all("baggage")) {
      const hit = findPair(v, 44, enc.encode("graylane"));
      if (hit !== undefined) {
        const semi = hit.indexOf(59);
        return semi >= 0 ? trimRight(hit.subarray(0, semi)) : hit;
      }
    }
    return undefined;
  }
}

const isOws = (c: number) => c === 32 || c === 9;
function trimRight(b: Uint8Array): Uint8Array {
  let l = b.length;
  while (l > 0 && isOws(b[l - 1])) l--;
  return b.subarray(0, l);
}

/** request.ts findPair: "k=v<sep>k=v", key compared exactly after trimming whitespace; a bare key has an empty value. */
function findPair(p: Uint8Array, sep: number, name: Uint8Array): Uint8Array | undefined {
  let i = 0;
  while (i <= p.length) {
    let j = i;
    while (j < p.length && p[j] !== sep) j++;
    let ks = i;
    while (ks < j && isOws(p[ks])) ks++;
    let e = ks;
    while (e < j && p[e] !== 61) e++;
    const key = trimRight(p.subarray(ks, e));
    if (eq(key, name)) {
      if (e < j) {
        let vs = e + 1;
        while (vs < j && isOws(p[vs])) vs++;
        return trimRight(p.subarray(vs, j));
      }
      return new Uint8Array(0);
    }
    i = j + 1;
  }
  return undefined;
}

export interface Destination { group: number; service: number }

/**
 * DESIGN.md's destination: inbound, the local service; outbound and at the edge, the route metadata
 * service, else the :authority host (any case, no port), else at the edge the longest path prefix.
 */
export function destination(groups: ParsedGroupLike[], view: View, placement: { kind: string; service?: string }, routeService?: string): Destination | undefined {
  const byName = (name: string): Destination | undefined => {
    for (let g = 0; g < groups.length; g++) {
      const s = groups[g].services.findIndex((x) => x.name === name);
      if (s >= 0) return { group: g, service: s };
    }
    return undefined;
  };
  if (placement.kind === "inbound") return placement.service === undefined ? undefined : byName(placement.service);
  if (routeService !== undefined) {
    const d = byName(routeService);
    if (d) return d;
  }
  const host = view.host();
  if (host && host.length > 0) {
    for (let g = 0; g < groups.length; g++) {
      for (let s = 0; s < groups[g].services.length; s++) {
        if (groups[g].services[s].hosts.some((h) => eqIgnoreCase(enc.encode(h), host))) return { group: g, service: s };
      }
    }
  }
  const path = view.path();
  if (placement.kind === "edge" && path !== undefined) {
    let best = 0;
    let found: Destination | undefined;
    for (let g = 0; g < groups.length; g++) {
      groups[g].services.forEach((svc, s) => {
        for (const p of svc.paths) {
          const pb = enc.encode(p);
          if ((pb.length > best || !found) && pb.length <= path.length && eq(path.subarray(0, pb.length), pb)) {
            best = pb.length;
            found = { group: g, service: s };
          }
        }
      });
    }
    return found;
  }
  return undefined;
}

/** The lane index `name` names in group g (base is 0), or -1: GroupRules.laneByName, exact bytes. */
/** The trace header value the edge makes (DESIGN.md "The edge"), by trace header; B3 also gets x-b3-spanid. */
export function generatedTraceFormat(traceHeader: string): RegExp {
  return traceHeader === "traceparent" ? /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-00$/ : /^[0-9a-f]{32}$/;
}
export const B3_SPAN = /^(?!0{16})[0-9a-f]{16}$/;

export function laneIndex(g: ParsedGroupLike, name: Uint8Array | undefined): number {
  if (!name) return -1;
  const names = [g.baseLane, ...g.lanes.map((l) => l.name)];
  return names.findIndex((n) => eq(enc.encode(n), name));
}

/** The route of lane `lane` (0 = base) for service `service`: the lane if it has it, else down its fallbacks. */
export function routeOf(g: ParsedGroupLike, lane: number, service: string): number {
  const names = [g.baseLane, ...g.lanes.map((l) => l.name)];
  let l = lane;
  for (let hops = 0; hops <= g.lanes.length; hops++) {
    if (l === 0 || g.lanes[l - 1].services.includes(service)) return l;
    l = names.indexOf(g.lanes[l - 1].fallback);
  }
  return 0;
}
