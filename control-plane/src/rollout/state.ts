// A release as stored and served: its spec plus the state machine's position. Every timer is an
// absolute time in here, so a control plane restarted mid-release picks up the same step with the
// same deadlines.
import type { AnalysisSpec, ReleaseSpec, StepSpec } from "./spec.js";

export type ReleaseStatus = "progressing" | "paused" | "promoted" | "finished" | "aborted" | "failed" | "undone";
export const ACTIVE: ReadonlySet<ReleaseStatus> = new Set(["progressing", "paused", "promoted"]);
/** Statuses in which steps still run (promoted waits only for finish or a switch-back). */
export const RUNNING: ReadonlySet<ReleaseStatus> = new Set(["progressing", "paused"]);

export type PauseReason = "approval" | "duration" | "manual" | "inconclusive" | "confirm";
export type Verdict = "pass" | "fail" | "inconclusive";

export interface MetricResult {
  name: string;
  value: number | null;
  baseValue: number | null;
  verdict: Verdict;
  reason: string;
}

export interface AnalysisInterval {
  at: string;
  verdict: Verdict;
  /** Lane requests counted in the interval. */
  requests: number;
  baseRequests: number;
  metrics: MetricResult[];
}

/** Cumulative counters at the start of the current interval (lane vs base), for exact deltas. */
export type CounterSnapshot = Record<string, { requests: number; errors: number; buckets: number[] }>;

export interface AnalysisRun {
  /** The analysis step's index, or -1 for the background analysis. */
  step: number;
  spec: AnalysisSpec;
  startedAt: string;
  /** When the current interval ends (ms since epoch). */
  nextAt: number;
  successes: number;
  failures: number;
  inconclusive: number;
  intervals: AnalysisInterval[];
  snapshot: CounterSnapshot;
}

export interface ReleaseEvent {
  at: string;
  type: string;
  message: string;
}

export interface LaneSetting {
  weight: number;
  match: unknown[];
}

export interface Release {
  name: string;
  group: string;
  lane: string;
  strategy: ReleaseSpec["strategy"];
  steps: StepSpec[];
  analysis: AnalysisSpec;
  webhooks: ReleaseSpec["webhooks"];
  status: ReleaseStatus;
  /** Index into steps; steps.length once every step ran. */
  currentStep: number;
  /** The lane's configured weight as this release last set it. */
  weight: number;
  message: string;
  pause?: { reason: PauseReason; until?: string; untilMs?: number; /** what a manual pause interrupted */ held?: { reason: PauseReason; until?: string; untilMs?: number } };
  analysisRun?: AnalysisRun;
  backgroundRun?: AnalysisRun;
  /** The step whose confirm webhook answered 2xx. */
  confirmedStep?: number;
  /** The lane before the release touched it: abort and failure return to it at weight 0. */
  initial: LaneSetting;
  /** Store revision written when the release finished (undo returns to it). */
  finishedRevision?: number;
  events: ReleaseEvent[];
  createdAt: string;
  updatedAt: string;
  createdBy: string;
  finishedAt?: string;
  /** Why a release failed or was aborted. */
  reason?: string;
}

export const MAX_EVENTS = 200;
export const MAX_INTERVALS = 100;
