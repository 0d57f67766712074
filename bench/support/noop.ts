// Builds bench/assembly/noop-filter.ts (the do-nothing proxy-wasm module) into `dir`. An empty
// asconfig keeps asc from compiling the project's own entries (the whole filter) into it;
// `abort=` leaves it with no imports at all (Envoy refuses a module whose imports it lacks).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export function buildNoopFilter(dir: string): string {
  const out = join(dir, "noop.wasm");
  writeFileSync(join(dir, "asconfig.json"), "{}");
  execFileSync("node_modules/.bin/asc", ["bench/assembly/noop-filter.ts", "--config", join(dir, "asconfig.json"), "-o", out,
    "--runtime", "stub", "-Oz", "--exportStart", "_initialize", "--use", "abort="], { stdio: "pipe" });
  return out;
}
