// A release as stored and served: its spec plus the state machine's position. Every timer is an
// absolute time in here, so a control plane restarted mid-release picks up the same step with the
// same deadlines.
//
// The zod schema below is the one description of a release as stored and served: the Release type
// is its z.output and the OpenAPI schema of every release answer derives from it. It is never used
// to parse (the engine alone writes releases).
import { z } from "zod";
import { AnalysisSpecSchema, ConfirmHookSchema, Step } from "./spec.js";

export const STATUSES = ["progressing", "paused", "promoted", "finished", "aborted", "failed", "undone"] as const;
export type ReleaseStatus = (typeof STATUSES)[number];
export const ACTIVE: ReadonlySet<ReleaseStatus> = new Set(["progressing", "paused", "promoted"]);
/** Statuses in which steps still run (promoted waits only for finish or a switch-back). */
export const RUNNING: ReadonlySet<ReleaseStatus> = new Set(["progressing", "paused"]);

const PAUSE_REASONS = ["approval", "duration", "manual", "inconclusive", "confirm"] as const;
export type PauseReason = (typeof PAUSE_REASONS)[number];
const Verdict = z.enum(["pass", "fail", "inconclusive"]);
export type Verdict = z.output<typeof Verdict>;

const time = z.string().meta({ description: "ISO 8601 time" });

const MetricResultSchema = z.strictObject({
  name: z.string(),
  value: z.number().nullable(),
  baseValue: z.number().nullable(),
  verdict: Verdict,
  reason: z.string(),
});
export type MetricResult = z.output<typeof MetricResultSchema>;

const AnalysisIntervalSchema = z.strictObject({
  at: time,
  verdict: Verdict,
  requests: z.number().meta({ description: "Lane requests counted in the interval" }),
  baseRequests: z.number(),
  metrics: z.array(MetricResultSchema),
});
export type AnalysisInterval = z.output<typeof AnalysisIntervalSchema>;

/** Cumulative counters at the start of the current interval (lane vs base), for exact deltas. */
const CounterSnapshotSchema = z.record(z.string(), z.strictObject({ requests: z.number(), errors: z.number(), buckets: z.array(z.number()) }));
export type CounterSnapshot = z.output<typeof CounterSnapshotSchema>;

const AnalysisRunSchema = z.strictObject({
  step: z.number().int().meta({ description: "The analysis step's index, or -1 for the background analysis" }),
  spec: AnalysisSpecSchema,
  startedAt: time,
  nextAt: z.number().meta({ description: "When the current interval ends (ms since epoch)" }),
  successes: z.number().int(),
  failures: z.number().int(),
  inconclusive: z.number().int(),
  intervals: z.array(AnalysisIntervalSchema),
  snapshot: CounterSnapshotSchema,
});
export type AnalysisRun = z.output<typeof AnalysisRunSchema>;

const EventSchema = z.strictObject({ at: time, type: z.string(), message: z.string() });
export type ReleaseEvent = z.output<typeof EventSchema>;

const LaneSettingSchema = z.strictObject({ weight: z.number(), match: z.array(z.unknown()) });
export type LaneSetting = z.output<typeof LaneSettingSchema>;

const PausePoint = { reason: z.enum(PAUSE_REASONS), until: time.optional(), untilMs: z.number().optional() };

export const ReleaseSchema = z.strictObject({
  name: z.string(),
  group: z.string(),
  lane: z.string(),
  strategy: z.enum(["canary", "blueGreen"]),
  steps: z.array(Step),
  analysis: AnalysisSpecSchema,
  webhooks: z.strictObject({ confirm: z.array(ConfirmHookSchema), events: z.array(z.string()) }),
  status: z.enum(STATUSES),
  currentStep: z.number().int().meta({ description: "Index into steps; steps.length once every step ran" }),
  weight: z.number().meta({ description: "The lane's configured weight (percent) as this release last set it" }),
  laneMatch: z.array(z.unknown()).optional().meta({ description: "Overlay mode (--store kubernetes): the lane's match blocks as this release last set them (absent: the spec's)" }),
  message: z.string(),
  pause: z.strictObject({
    ...PausePoint,
    held: z.strictObject(PausePoint).optional().meta({ description: "What a manual pause interrupted" }),
  }).optional(),
  analysisRun: AnalysisRunSchema.optional(),
  backgroundRun: AnalysisRunSchema.optional(),
  confirmedStep: z.number().int().optional().meta({ description: "The step whose confirm webhook answered 2xx" }),
  initial: LaneSettingSchema.meta({ description: "The lane before the release touched it: abort and failure return to it at weight 0" }),
  finishedRevision: z.number().int().optional().meta({ description: "Store revision written when the release finished (undo returns to it)" }),
  events: z.array(EventSchema),
  createdAt: time,
  updatedAt: time,
  createdBy: z.string(),
  finishedAt: time.optional(),
  reason: z.string().optional().meta({ description: "Why a release failed or was aborted" }),
}).meta({ description: "A release: its spec (steps, analysis, webhooks) and its state (status, currentStep, weight, pause, analysis runs, events)" });
export type Release = z.output<typeof ReleaseSchema>;

export const MAX_EVENTS = 200;
export const MAX_INTERVALS = 100;
