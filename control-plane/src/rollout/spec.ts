// The release resource as users write it (POST /v1/releases), with Argo Rollouts' step vocabulary
// and Flagger's analysis knobs, and the defaults that fill in what is left out. ReleaseInput is the
// one description of the request: the step types derive from it, and so does its OpenAPI schema.
import { z } from "zod";
import { parseDuration } from "../model/duration.js";
import { pointer, type FieldError } from "../model/errors.js";

const NAME = /^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const name = z.string().regex(NAME, "must be 1-63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen");

/** "250ms", "5s", "1m30s", "1h"; a bare number is seconds. */
const duration = z.string().refine((s) => parseDuration(s) !== undefined, "must be a duration such as 250ms, 30s, 5m or 1h")
  .meta({ description: "A duration such as 250ms, 30s, 5m, 1h or 1h30m (a bare number: seconds)" });
const url = z.string().refine((s) => { try { const u = new URL(s); return u.protocol === "http:" || u.protocol === "https:"; } catch { return false; } }, "must be an http(s) URL")
  .meta({ description: "An http(s) URL" });

const Metric = z.discriminatedUnion("name", [
  z.strictObject({
    name: z.literal("error-rate"),
    /** Highest acceptable share of 5xx answers in the lane, 0..1. */
    max: z.number().min(0).max(1),
    /** Highest acceptable excess over the base lane's error rate in the same interval, 0..1. */
    maxAboveBase: z.number().min(0).max(1).optional(),
  }),
  z.strictObject({
    name: z.literal("p99-latency"),
    /** Highest acceptable p99 latency in the lane, milliseconds. */
    maxMs: z.number().positive(),
    /** Highest acceptable excess over the base lane's p99 in the same interval, milliseconds. */
    maxAboveBaseMs: z.number().min(0).optional(),
  }),
  z.strictObject({
    name: z.literal("prometheus"),
    /** Prometheus base URL, e.g. http://prometheus:9090. */
    address: url,
    /** PromQL returning one number; `$group`, `$lane`, `$interval` are substituted. */
    query: z.string().min(1),
    min: z.number().optional(),
    max: z.number().optional(),
  }).refine((m) => m.min !== undefined || m.max !== undefined, "needs min or max"),
]);

const AnalysisFields = {
  /** Length of one measurement interval. */
  interval: duration.optional(),
  /** Passing intervals an analysis step needs. */
  count: z.number().int().min(1).max(1000).optional(),
  /** Failing intervals tolerated; one more rolls the release back. */
  failureLimit: z.number().int().min(0).max(1000).optional(),
  /** Fewer lane requests than this in an interval make it inconclusive (never a pass). */
  minRequests: z.number().int().min(1).optional(),
  /** How long an analysis may stay without enough passes before `onInconclusive`. */
  deadline: duration.optional(),
  /** What happens at the deadline: roll back (default) or pause for a person to decide. */
  onInconclusive: z.enum(["abort", "pause"]).optional(),
  metrics: z.array(Metric).min(1).optional(),
};

const Analysis = z.strictObject({
  ...AnalysisFields,
  /** Also measure every interval during the whole release while the lane takes traffic (Flagger-style). */
  background: z.boolean().optional(),
});

const AnalysisStep = z.strictObject(AnalysisFields);

export const Step = z.union([
  z.strictObject({ setWeight: z.number().min(0).max(100).refine((w) => Math.abs(w * 100 - Math.round(w * 100)) < 1e-6, "at most two decimals") }),
  // Conditions are checked against the lane group at creation (same rules as PUT of the group).
  z.strictObject({ setMatch: z.array(z.unknown()).meta({ description: "Match blocks, as a lane's match (checked against the lane group when the release is created)" }) }),
  z.strictObject({ pause: z.strictObject({ duration: duration.optional() }).meta({ description: "Without a duration: until approved" }) }),
  z.strictObject({ analysis: AnalysisStep.meta({ description: "Overrides of the release's analysis settings for this step" }) }),
], { error: "a step is one of setWeight, setMatch, pause, analysis" });

/** A confirm gate: POSTed before the listed steps; `timeout` per call (default 10s), asked again after `retry` (default 5s). */
export const ConfirmHookSchema = z.strictObject({ url, beforeSteps: z.array(z.number().int().min(0)).optional(), timeout: duration.optional(), retry: duration.optional() });

const Webhooks = z.strictObject({
  /** Before the listed steps (all steps when omitted) POST the release to `url`; 2xx goes on, anything else waits and asks again. */
  confirm: z.array(ConfirmHookSchema).optional(),
  /** Every event of the release is POSTed to these URLs (best effort). */
  events: z.array(url).optional(),
});

export const ReleaseInput = z.strictObject({
  name,
  group: name,
  lane: name,
  strategy: z.enum(["canary", "blueGreen"]).default("canary"),
  steps: z.array(Step).max(100).optional(),
  analysis: Analysis.optional(),
  webhooks: Webhooks.optional(),
});

/** Analysis settings with every default filled in and durations in ms (as a release holds them). */
export const AnalysisSpecSchema = z.strictObject({
  interval: z.string(),
  intervalMs: z.number(),
  count: z.number().int(),
  failureLimit: z.number().int(),
  minRequests: z.number().int(),
  deadline: z.string(),
  deadlineMs: z.number(),
  onInconclusive: z.enum(["abort", "pause"]),
  background: z.boolean(),
  metrics: z.array(Metric),
});

export type MetricSpec = z.infer<typeof Metric>;
export type StepSpec = z.output<typeof Step>;
export type AnalysisOverrides = z.output<typeof AnalysisStep>;
export type AnalysisSpec = z.output<typeof AnalysisSpecSchema>;

export interface ReleaseSpec {
  name: string;
  group: string;
  lane: string;
  strategy: "canary" | "blueGreen";
  steps: StepSpec[];
  analysis: AnalysisSpec;
  webhooks: { confirm: ConfirmHook[]; events: string[] };
}

export type ConfirmHook = z.output<typeof ConfirmHookSchema>;

export const DEFAULT_ANALYSIS: Omit<AnalysisSpec, "intervalMs" | "deadlineMs"> = {
  interval: "1m",
  count: 3,
  failureLimit: 1,
  minRequests: 20,
  deadline: "15m",
  onInconclusive: "abort",
  background: false,
  metrics: [{ name: "error-rate", max: 0.05 }, { name: "p99-latency", maxMs: 1000 }],
};

/** 10% → approval → 50% → approval → 100%. */
export const DEFAULT_CANARY_STEPS: StepSpec[] = [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }, { setWeight: 100 }];
/** The new lane takes only override traffic (weight 0), a person approves, then it takes all at once. */
export const DEFAULT_BLUE_GREEN_STEPS: StepSpec[] = [{ setWeight: 0 }, { pause: {} }, { setWeight: 100 }];

export type SpecResult = { ok: true; value: ReleaseSpec } | { ok: false; errors: FieldError[] };

export function parseRelease(input: unknown): SpecResult {
  const r = ReleaseInput.safeParse(input);
  if (!r.success) return { ok: false, errors: r.error.issues.map((i) => ({ path: pointer(i.path), message: i.message })) };
  const v = r.data;
  const errors: FieldError[] = [];
  const steps = (v.steps ?? (v.strategy === "blueGreen" ? DEFAULT_BLUE_GREEN_STEPS : DEFAULT_CANARY_STEPS)) as StepSpec[];
  if (steps.length === 0) errors.push({ path: "/steps", message: "a release needs at least one step" });
  if (v.strategy === "blueGreen" && v.steps) {
    // Blue-green moves all traffic at once: only 0 and 100 make sense.
    steps.forEach((s, i) => {
      if ("setWeight" in s && s.setWeight !== 0 && s.setWeight !== 100) errors.push({ path: `/steps/${i}/setWeight`, message: "blueGreen switches at once: 0 or 100" });
    });
  }
  for (const [i, hook] of (v.webhooks?.confirm ?? []).entries()) {
    for (const [j, s] of (hook.beforeSteps ?? []).entries()) {
      if (s >= steps.length) errors.push({ path: `/webhooks/confirm/${i}/beforeSteps/${j}`, message: `no step ${s} (the release has ${steps.length})` });
    }
  }
  if (errors.length) return { ok: false, errors };
  const a = { ...DEFAULT_ANALYSIS, ...stripUndefined(v.analysis ?? {}) };
  return {
    ok: true,
    value: {
      name: v.name, group: v.group, lane: v.lane, strategy: v.strategy, steps,
      analysis: { ...a, intervalMs: parseDuration(a.interval)!, deadlineMs: parseDuration(a.deadline)! } as AnalysisSpec,
      webhooks: { confirm: v.webhooks?.confirm ?? [], events: v.webhooks?.events ?? [] },
    },
  };
}

/** The release's analysis settings overridden by one analysis step's. */
export function stepAnalysis(spec: ReleaseSpec, overrides: AnalysisOverrides): AnalysisSpec {
  const a = { ...spec.analysis, ...stripUndefined(overrides) } as AnalysisSpec;
  return { ...a, intervalMs: parseDuration(a.interval)!, deadlineMs: parseDuration(a.deadline)! };
}

export function describeStep(s: StepSpec): string {
  if ("setWeight" in s) return `setWeight ${s.setWeight}`;
  if ("setMatch" in s) return `setMatch (${s.setMatch.length} block${s.setMatch.length === 1 ? "" : "s"})`;
  if ("pause" in s) return s.pause.duration ? `pause ${s.pause.duration}` : "pause until approved";
  return "analysis";
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
