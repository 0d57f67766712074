// Which operations each release state offers (rollout/operations.ts: served as allowedOperations,
// the dashboard's buttons) and which the engine runs (its 409 guards).
import { describe, expect, it } from "vitest";
import { allowedOperations, OPERATIONS, refusal, releaseView } from "../../control-plane/src/rollout/operations.js";
import type { PauseReason, Release, ReleaseStatus } from "../../control-plane/src/rollout/state.js";

type State = Pick<Release, "status" | "pause">;
const paused = (reason: PauseReason): State => ({ status: "paused", pause: { reason } });
const at = (status: ReleaseStatus): State => ({ status });

// [state, what it offers]; OPERATIONS order.
const TABLE: Array<[string, State, string[]]> = [
  ["progressing", at("progressing"), ["pause", "abort", "promote"]],
  ["paused for approval", paused("approval"), ["approve", "pause", "abort", "promote"]],
  ["paused for a duration", paused("duration"), ["approve", "pause", "abort", "promote"]],
  ["paused, analysis inconclusive", paused("inconclusive"), ["approve", "pause", "abort", "promote"]],
  ["paused for a confirm webhook", paused("confirm"), ["pause", "abort", "promote"]],
  ["paused by hand", { status: "paused", pause: { reason: "manual", held: { reason: "approval" } } }, ["resume", "abort", "promote"]],
  ["promoted", at("promoted"), ["abort", "finish", "undo"]],
  ["finished", at("finished"), ["undo"]],
  ["aborted", at("aborted"), ["undo"]],
  ["failed", at("failed"), ["undo"]],
  ["undone", at("undone"), []],
];

describe("release operations per state", () => {
  it.each(TABLE)("%s offers exactly its operations", (_what, state, offered) => {
    expect(allowedOperations(state)).toEqual(offered);
  });

  it("the engine runs every offered operation, and refuses the rest but undo of a running release and a second pause", () => {
    for (const [what, state, offered] of TABLE) {
      for (const op of OPERATIONS) {
        const accepted = refusal(state, op) === undefined;
        const acceptedUnoffered = (op === "undo" && (state.status === "progressing" || state.status === "paused"))
          || (op === "pause" && state.pause?.reason === "manual");
        expect(accepted, `${what}: ${op}`).toBe(offered.includes(op) || acceptedUnoffered);
      }
    }
  });

  it("refusals say why, as the 409 shows them", () => {
    expect(refusal(at("promoted"), "approve")).toBe("it is promoted, not paused");
    expect(refusal(paused("manual"), "approve")).toBe("it was paused by hand: resume it");
    expect(refusal(paused("confirm"), "approve")).toBe("it waits for its confirm webhook");
    expect(refusal(paused("approval"), "resume")).toBe("it waits for approval: approve it");
    expect(refusal(at("aborted"), "abort")).toBe("it is already aborted");
    expect(refusal(at("paused"), "finish")).toBe("only a promoted release can finish; it is paused");
    expect(refusal(at("undone"), "undo")).toBe("it is already undone");
  });

  it("releaseView adds allowedOperations and keeps every field", () => {
    const r = { name: "r1", status: "promoted" as const, weight: 100 };
    expect(releaseView(r)).toEqual({ name: "r1", status: "promoted", weight: 100, allowedOperations: ["abort", "finish", "undo"] });
    expect(r).not.toHaveProperty("allowedOperations");
  });
});
