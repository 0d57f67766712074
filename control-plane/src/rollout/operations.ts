// Which operations a release's state allows, written once: the state machine's guards (the engine
// refuses every other operation with 409 and the reason below) and the operations a user is offered,
// served as `allowedOperations` with each release (the dashboard's buttons follow that field).
import { z } from "zod";
import { ACTIVE, ReleaseSchema, RUNNING, type Release } from "./state.js";

export const OPERATIONS = ["approve", "pause", "resume", "abort", "promote", "finish", "undo"] as const;
export type Operation = (typeof OPERATIONS)[number];

/** What the guards read of a release. */
export type ReleaseState = Pick<Release, "status" | "pause">;

/** Why the engine refuses `op` in this state, or undefined when it runs it. */
export function refusal(r: ReleaseState, op: Operation): string | undefined {
  switch (op) {
    case "approve":
      if (r.status !== "paused") return `it is ${r.status}, not paused`;
      if (r.pause?.reason === "manual") return "it was paused by hand: resume it";
      if (r.pause?.reason === "confirm") return "it waits for its confirm webhook";
      return undefined;
    case "pause":
    case "promote":
      return RUNNING.has(r.status) ? undefined : `it is ${r.status}`;
    case "resume":
      if (r.pause?.reason === "manual") return undefined;
      return r.status === "paused" ? `it waits for ${r.pause?.reason}: approve it` : `it is ${r.status}`;
    case "abort":
      return ACTIVE.has(r.status) ? undefined : `it is already ${r.status}`;
    case "finish":
      return r.status === "promoted" ? undefined : `only a promoted release can finish; it is ${r.status}`;
    case "undo":
      return r.status === "undone" ? "it is already undone" : undefined;
  }
}

/**
 * The operations offered in this state, in OPERATIONS order: those the engine runs, less two it
 * accepts without offering them. A second pause of a release paused by hand changes nothing (the
 * engine answers the release as it is). Undo of a running release is left to abort, which ends a
 * running release; undo is offered once the release is promoted or has ended.
 */
export function allowedOperations(r: ReleaseState): Operation[] {
  return OPERATIONS.filter((op) => refusal(r, op) === undefined
    && !(op === "pause" && r.pause?.reason === "manual")
    && !(op === "undo" && RUNNING.has(r.status)));
}

/** A release as the REST API serves it: with the operations its state offers. */
export function releaseView<R extends ReleaseState>(r: R): R & { allowedOperations: Operation[] } {
  return { ...r, allowedOperations: allowedOperations(r) };
}

/** The release as the REST API serves it, for its OpenAPI schema (api/json-schema.ts). */
export const ReleaseViewSchema = ReleaseSchema.extend({
  allowedOperations: z.array(z.enum(OPERATIONS)).meta({
    uniqueItems: true,
    description: "The operations this release's state offers (POST /v1/releases/{name}/{op}); the engine answers 409 to the others, except undo of a running release and a second pause, which it accepts without offering them",
  }),
}).meta({ description: "A release: its spec (steps, analysis, webhooks), its state (status, currentStep, weight, pause, analysis runs, events) and the operations that state offers" });
