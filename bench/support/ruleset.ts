// The realistic RuleSet every benchmark uses: 5 lane groups, 20 conditions (3 of them regexes),
// weighted lanes, an override header and a trace header (trace memory on), compiled by the real
// model and compiler from lane-group JSON; and the request headers a browser-ish client sends.
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";

export const GROUPS = 5;

/** Lane group i (JSON, as a user PUTs it). `canaryWeight` lets push-latency change it per step. */
export function benchGroup(i: number, canaryWeight = 10): Record<string, unknown> {
  const name = `shop${i}`;
  // 4 conditions per group × 5 groups = 20; a cookie regex in groups 0-2 = 3 regexes.
  const second = i < 3
    ? { cookies: { uid: { regex: `${i + 1}[0-9]{3}` } }, method: ["GET", "POST"] }
    : { headers: { "x-team": { prefix: "qa-" } }, os: ["iOS", "Android"] };
  return {
    name,
    services: [{ name: `${name}-web`, hosts: [`${name}-web`, `${name}-web.default.svc.cluster.local`] }, { name: `${name}-api` }],
    overrideHeader: "x-asm-prefer-tag", traceHeader: "x-request-id", stickyKey: { header: "x-user-id" },
    lanes: [
      { name: "gray", services: [`${name}-web`], match: [{ headers: { grayrelease: { exact: "version2" } } }, second] },
      { name: "canary", services: [`${name}-web`, `${name}-api`], weight: canaryWeight, match: [{ queryParams: { beta: { exact: "1" } } }] },
      { name: "blue", services: [`${name}-api`], weight: 5 },
    ],
  };
}

export function benchGroupsJson(): Array<Record<string, unknown>> {
  return Array.from({ length: GROUPS }, (_, i) => benchGroup(i));
}

export function parseGroups(json: unknown[]): LaneGroup[] {
  return json.map((g) => {
    const r = parseLaneGroup(g);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.value;
  });
}

export function benchRuleSet() {
  const { bytes, ruleSet, version } = compileRuleSet(parseGroups(benchGroupsJson()));
  const conditions = ruleSet.groups.flatMap((g) => g.lanes.flatMap((l) => l.match.flatMap((b) => b.conditions))).length;
  return { bytes, ruleSet, version, conditions, regexes: ruleSet.dfas.length, base64: Buffer.from(bytes).toString("base64") };
}

export const UA_IPHONE_CHROME = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0 Mobile/15E148 Safari/604.1";

/** The host of request i: the 5 groups' web services in turn (shifted every 10, so overrides hit all). */
export function benchHost(i: number): string {
  return `shop${(i + Math.floor(i / 10)) % GROUPS}-web.default.svc.cluster.local:8080`;
}

/** ~18 request headers, a distinct trace id per i; every 10th with the override header. */
export function benchRequest(i: number, host = benchHost(i)): Array<[string, string]> {
  const h: Array<[string, string]> = [
    [":method", "GET"], [":scheme", "http"], [":authority", host],
    [":path", `/api/items/${i}?page=2&beta=0`], ["user-agent", UA_IPHONE_CHROME], ["accept", "application/json"],
    ["accept-encoding", "gzip, deflate, br"], ["accept-language", "en-US,en;q=0.9"],
    ["x-request-id", `7f3c${i}-bench-trace`], ["x-user-id", `user-${i % 50_000}`],
    ["cookie", `session=abc123; uid=9${i % 1000}; theme=dark`], ["x-forwarded-for", "10.1.2.3"],
    ["x-forwarded-proto", "http"], ["baggage", "tenant=acme,region=eu"],
    ["traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    ["x-b3-sampled", "1"], ["grayrelease", "version1"], ["cache-control", "no-cache"],
  ];
  if (i % 10 === 0) h.push(["x-asm-prefer-tag", "canary"]);
  return h;
}

/** The route header the compiled groups use (the default), which Envoy's bench routes match on. */
export const ROUTE_HEADER = "x-graylane-route";

/** A host of no lane group: the bench's no-group traffic (a catch-all route, no graylane metadata). */
export const OTHER_HOST = "payments.default.svc.cluster.local";

/** Request i of the no-group traffic: benchRequest's headers on OTHER_HOST, no override, every 10th with a stray route header. */
export function noGroupRequest(i: number): Array<[string, string]> {
  const h = benchRequest(i, `${OTHER_HOST}:8080`).filter(([k]) => k !== "x-asm-prefer-tag");
  if (i % 10 === 0) h.push([ROUTE_HEADER, "canary"]);
  return h;
}
