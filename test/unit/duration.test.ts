// Duration parsing (model/duration.ts), used by /v1/traffic windows, release steps and override TTLs.
import { expect, it } from "vitest";
import { parseDuration } from "../../control-plane/src/model/duration.js";

it("windows, pauses, timeouts and TTLs as people write them", () => {
  expect(parseDuration("60s")).toBe(60_000);
  expect(parseDuration("5m")).toBe(300_000);
  expect(parseDuration("1h")).toBe(3_600_000);
  expect(parseDuration("1h30m")).toBe(5_400_000);
  expect(parseDuration("250ms")).toBe(250);
  expect(parseDuration("1.5s")).toBe(1500);
  expect(parseDuration("90")).toBe(90_000);
  expect(parseDuration("2d")).toBe(172_800_000);
  for (const bad of ["", "s", "5x", "-1s", "0s", "1 h", "abc"]) expect(parseDuration(bad), bad).toBeUndefined();
});
