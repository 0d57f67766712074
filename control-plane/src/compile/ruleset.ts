// Lane groups → the RuleSet the filter executes. Deterministic: the same groups give the same
// bytes whatever the order of object keys, so the version (a content hash) only changes when the
// rules do.
import { createHash } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  ConditionKind, MatchOp, OverrideTrust, RuleSetSchema, UserAgentBrowser, UserAgentOs,
  type Condition, type Dfa, type Group, type Lane, type RuleSet,
} from "../generated/graylane/v1/rules_pb.js";
import { parseLaneGroup, validateLaneGroups, type LaneGroup, type MatchBlock, type StringMatch, type UriMatch } from "../model/lanegroup.js";
import type { FieldError } from "../model/errors.js";
import { DEFAULT_STATE_CAP } from "../model/regex.js";
import { compileRegex } from "./dfa.js";
import { configuredSplit } from "./shares.js";

export class CompileError extends Error {
  constructor(public readonly errors: FieldError[]) {
    super("invalid lane groups: " + errors.map((e) => `${e.path}: ${e.message}`).join("; "));
    this.name = "CompileError";
  }
}

const OS_BITS: Record<string, number> = {
  iOS: UserAgentOs.IOS, Android: UserAgentOs.ANDROID, Windows: UserAgentOs.WINDOWS, macOS: UserAgentOs.MACOS, Linux: UserAgentOs.LINUX,
};
const BROWSER_BITS: Record<string, number> = {
  Chrome: UserAgentBrowser.CHROME, Edge: UserAgentBrowser.EDGE, Firefox: UserAgentBrowser.FIREFOX, Safari: UserAgentBrowser.SAFARI, IE: UserAgentBrowser.IE,
};
const TRUST: Record<LaneGroup["overrideTrust"], OverrideTrust> = {
  any: OverrideTrust.ANY, internal: OverrideTrust.INTERNAL, signed: OverrideTrust.SIGNED,
};

const utf8 = new TextEncoder();
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Regexes shared across the RuleSet, deduplicated by source in first-use order. */
class DfaTable {
  readonly dfas: Dfa[] = [];
  private readonly index = new Map<string, number>();
  constructor(private readonly stateCap: number) {}
  add(source: string): number {
    let i = this.index.get(source);
    if (i === undefined) {
      i = this.dfas.length;
      this.dfas.push(compileRegex(source, { stateCap: this.stateCap }));
      this.index.set(source, i);
    }
    return i;
  }
}

function stringCondition(kind: ConditionKind, name: string, m: StringMatch | UriMatch, dfas: DfaTable): Condition {
  const c = { kind, name, op: MatchOp.EXACT, value: new Uint8Array(), dfa: 0, values: [] as string[], classes: 0 } as Condition;
  if (m.exact !== undefined) { c.op = MatchOp.EXACT; c.value = utf8.encode(m.exact); }
  else if (m.prefix !== undefined) { c.op = MatchOp.PREFIX; c.value = utf8.encode(m.prefix); }
  else if (m.regex !== undefined) { c.op = MatchOp.REGEX; c.dfa = dfas.add(m.regex); }
  else if ("present" in m && m.present) c.op = MatchOp.PRESENT;
  else c.op = MatchOp.ABSENT;
  return c;
}

function conditions(block: MatchBlock, dfas: DfaTable): Condition[] {
  const out: Condition[] = [];
  const sorted = (r: Record<string, StringMatch> | undefined) => Object.entries(r ?? {}).sort(([a], [b]) => byName(a, b));
  // Header names are compared lowercased, as the filter sees them.
  const headers = Object.entries(block.headers ?? {}).map(([n, m]) => [n.toLowerCase(), m] as const).sort(([a], [b]) => byName(a, b));
  for (const [n, m] of headers) out.push(stringCondition(ConditionKind.HEADER, n, m, dfas));
  for (const [n, m] of sorted(block.cookies)) out.push(stringCondition(ConditionKind.COOKIE, n, m, dfas));
  for (const [n, m] of sorted(block.queryParams)) out.push(stringCondition(ConditionKind.QUERY, n, m, dfas));
  if (block.uri) out.push(stringCondition(ConditionKind.URI, "", block.uri, dfas));
  const anyOf = (kind: ConditionKind, values: string[], classes: number) =>
    ({ kind, name: "", op: MatchOp.ANY_OF, value: new Uint8Array(), dfa: 0, values, classes }) as Condition;
  if (block.method) out.push(anyOf(ConditionKind.METHOD, [...new Set(block.method.map((m) => m.toUpperCase()))].sort(byName), 0));
  if (block.os) out.push(anyOf(ConditionKind.OS, [], block.os.reduce((bits, o) => bits | OS_BITS[o], 0)));
  if (block.browser) out.push(anyOf(ConditionKind.BROWSER, [], block.browser.reduce((bits, b) => bits | BROWSER_BITS[b], 0)));
  return out;
}

function group(g: LaneGroup, dfas: DfaTable): Group {
  const laneIndex = new Map<string, number>([[g.baseLane, 0], ...g.lanes.map((l, i) => [l.name, i + 1] as [string, number])]);
  const base = { name: g.baseLane, services: g.services.map((s) => s.name), fallback: 0, match: [], bucketStart: 0, bucketEnd: 0 } as unknown as Lane;
  const split = configuredSplit(g).lanes;
  const lanes = g.lanes.map((l, i) => ({
    name: l.name, services: [...l.services], fallback: laneIndex.get(l.fallback) ?? 0,
    match: l.match.map((b) => ({ conditions: conditions(b, dfas) })), bucketStart: split[i]!.bucketStart, bucketEnd: split[i]!.bucketEnd,
  }) as unknown as Lane);
  const sk = g.stickyKey;
  return {
    name: g.name,
    services: g.services.map((s) => ({ name: s.name, hosts: s.hosts.map((h) => h.toLowerCase()), paths: [...s.paths] })),
    lanes: [base, ...lanes],
    laneHeader: g.laneHeader.toLowerCase(),
    routeHeader: g.routeHeader.toLowerCase(),
    overrideHeader: (g.overrideHeader ?? "").toLowerCase(),
    overrideTrust: TRUST[g.overrideTrust],
    trustIncoming: g.trustIncoming,
    traceHeader: g.traceHeader.toLowerCase(),
    generateTraceId: g.generateTraceId,
    strictIsolation: g.isolation === "strict",
    stickySalt: g.stickySalt,
    stickyKey: sk ? { header: (sk.header ?? "").toLowerCase(), cookie: sk.cookie ?? "", generate: sk.generate ?? false, maxAgeSeconds: sk.maxAgeSeconds ?? 0 } : undefined,
  } as unknown as Group;
}

/**
 * Required by a RuleSet with a strict group: a filter without decision step 3b would ignore
 * strict_isolation and send those requests to base, so it must NACK instead.
 */
export const FEATURE_INSTANCE_LANE = "instance-lane";

export interface CompiledRuleSet {
  ruleSet: RuleSet;
  bytes: Uint8Array;
  version: string;
}

export interface CompileOptions {
  /** DFA state cap per regex (default DEFAULT_STATE_CAP). */
  stateCap?: number;
  /** Features a filter must have to apply the RuleSet (sorted and deduplicated). */
  requiredFeatures?: string[];
}

/**
 * Checks `groups` again with the model's rules — each group on its own (paths `/<index>/...`), under
 * this compilation's state cap, then across groups — and returns them normalized.
 */
function validate(groups: LaneGroup[], stateCap: number): LaneGroup[] {
  const errors: FieldError[] = [];
  const valid: LaneGroup[] = [];
  groups.forEach((g, i) => {
    const r = parseLaneGroup(g, { stateCap });
    if (r.ok) valid.push(r.value);
    else errors.push(...r.errors.map((e) => ({ path: `/${i}${e.path}`, message: e.message })));
  });
  if (errors.length === 0) errors.push(...validateLaneGroups(valid));
  if (errors.length) throw new CompileError(errors);
  return valid;
}

export function compileRuleSet(groups: LaneGroup[], opts: CompileOptions = {}): CompiledRuleSet {
  const stateCap = opts.stateCap ?? DEFAULT_STATE_CAP;
  const dfas = new DfaTable(stateCap);
  const sorted = validate(groups, stateCap).sort((a, b) => byName(a.name, b.name));
  const compiled = sorted.map((g) => group(g, dfas));
  const ruleSet = create(RuleSetSchema, {
    version: "",
    groups: compiled,
    requiredFeatures: [...new Set([...(opts.requiredFeatures ?? []), ...(sorted.some((g) => g.isolation === "strict") ? [FEATURE_INSTANCE_LANE] : [])])].sort(byName),
    dfas: dfas.dfas,
  });
  ruleSet.version = createHash("sha256").update(toBinary(RuleSetSchema, ruleSet)).digest("hex").slice(0, 16);
  return { ruleSet, bytes: toBinary(RuleSetSchema, ruleSet), version: ruleSet.version };
}
