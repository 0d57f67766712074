// `graylane release ...`: create, inspect and steer progressive releases; `watch` redraws one
// release (current step, progress bar, observed vs configured share, analysis verdicts) until it
// stops running.
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { parse } from "yaml";
import type { Release } from "../rollout/state.js";
import { describeStep, type StepSpec } from "../rollout/spec.js";
import { parseDuration } from "../model/duration.js";
import type { ApiClient } from "./client.js";
import { ms, percent, table } from "./format.js";

interface Observed { windowMs: number; requests: number; observedShare: number; configuredShare: number; errorRate: number; p99Ms: number | null }
interface Deps {
  client: () => ApiClient;
  /** Prints json/yaml when asked; true when the caller should print its table. */
  structured: (body: unknown) => boolean;
  out: (text: string) => void;
  usage: (message: string) => Error;
  /** Exit with this code after printing (watch ends on a failed release with 1). */
  exit: (code: number) => Error;
  /** Whether output is a terminal (watch clears the screen between frames). */
  tty: boolean;
  stdin: () => string;
  sleep?: (ms: number) => Promise<void>;
}

const OPS = ["approve", "pause", "resume", "abort", "promote", "finish", "undo"] as const;
const OP_HELP: Record<(typeof OPS)[number], string> = {
  approve: "go past the pause (or inconclusive analysis) the release waits at",
  pause: "hold the release where it is (timers wait too)",
  resume: "continue a release paused by hand",
  abort: "set the lane back to 0% and mark the release aborted (also a blue-green switch-back)",
  promote: "skip the remaining steps: the lane takes 100%",
  finish: "after promotion, once base runs the new version: the lane empties, base serves everyone",
  undo: "return the lane to how the previous finished release left it (or to before this release)",
};

/** `--steps 10,pause,50,pause:5m,analysis,100` → steps. */
export function parseSteps(text: string): StepSpec[] {
  return text.split(",").map((t) => t.trim()).filter(Boolean).map((t): StepSpec => {
    if (/^\d+(\.\d{1,2})?%?$/.test(t)) return { setWeight: Number(t.replace("%", "")) };
    if (t === "pause") return { pause: {} };
    if (t.startsWith("pause:")) {
      const d = t.slice(6);
      if (parseDuration(d) === undefined) throw new Error(`step ${t}: ${d} is not a duration`);
      return { pause: { duration: d } };
    }
    if (t === "analysis") return { analysis: {} };
    throw new Error(`step ${t}: want a weight (10), pause, pause:DURATION or analysis`);
  });
}

export function registerReleaseCommands(program: Command, d: Deps): void {
  const release = program.command("release").description("progressive releases: canary steps, approvals, analysis, blue-green");

  release.command("create")
    .description("start a release from a file, or from flags")
    .option("-f, --filename <file>", "release spec, YAML or JSON ('-' for standard input)")
    .option("--name <name>", "release name")
    .option("--group <group>", "lane group")
    .option("--lane <lane>", "lane to release")
    .option("--strategy <strategy>", "canary or blueGreen", "canary")
    .option("--steps <list>", "e.g. 10,pause,50,pause:5m,analysis,100 (default: 10,pause,50,pause,100)")
    .action(async (o: { filename?: string; name?: string; group?: string; lane?: string; strategy: string; steps?: string }) => {
      let spec: Record<string, unknown>;
      if (o.filename) {
        let text: string;
        try { text = o.filename === "-" ? d.stdin() : readFileSync(o.filename, "utf8"); } catch (e) { throw d.usage(`cannot read ${o.filename}: ${(e as Error).message}`); }
        try { spec = parse(text) as Record<string, unknown>; } catch (e) { throw d.usage(`${o.filename}: ${(e as Error).message}`); }
        if (!spec || typeof spec !== "object") throw d.usage(`${o.filename}: want a release object`);
        for (const k of ["name", "group", "lane"] as const) if (o[k]) spec[k] = o[k];
      } else {
        const missing = (["name", "group", "lane"] as const).filter((k) => !o[k]);
        if (missing.length) throw d.usage(`without -f, give ${missing.map((k) => `--${k}`).join(", ")}`);
        spec = { name: o.name, group: o.group, lane: o.lane, strategy: o.strategy };
      }
      if (o.steps) {
        try { spec.steps = parseSteps(o.steps); } catch (e) { throw d.usage(`--steps: ${(e as Error).message}`); }
      }
      const r = await d.client().request<{ release: Release }>("POST", "/v1/releases", spec);
      if (d.structured(r.body)) d.out(render(r.body.release));
    });

  release.command("get <name>")
    .description("one release: steps, state, analysis verdicts, recent events")
    .action(async (name: string) => {
      const r = await d.client().request<{ release: Release; traffic?: Observed }>("GET", `/v1/releases/${encodeURIComponent(name)}`);
      if (d.structured(r.body)) d.out(render(r.body.release, r.body.traffic));
    });

  release.command("list")
    .description("releases, newest first")
    .option("--group <group>", "only this lane group")
    .action(async (o: { group?: string }) => {
      const q = o.group ? `?group=${encodeURIComponent(o.group)}` : "";
      const r = await d.client().request<{ releases: Release[] }>("GET", `/v1/releases${q}`);
      if (!d.structured(r.body)) return;
      const rows = r.body.releases.map((x) => [x.name, x.group, x.lane, x.strategy, x.status, `${Math.min(x.currentStep + 1, x.steps.length)}/${x.steps.length}`, `${x.weight}%`, x.updatedAt]);
      d.out(rows.length ? table(["NAME", "GROUP", "LANE", "STRATEGY", "STATUS", "STEP", "WEIGHT", "UPDATED"], rows) : "no releases\n");
    });

  for (const op of OPS) {
    release.command(`${op} <name>`)
      .description(OP_HELP[op])
      .action(async (name: string) => {
        const r = await d.client().request<{ release: Release }>("POST", `/v1/releases/${encodeURIComponent(name)}/${op}`);
        if (d.structured(r.body)) d.out(`release ${name}: ${r.body.release.status}, ${r.body.release.weight}% — ${r.body.release.message}\n`);
      });
  }

  release.command("watch <name>")
    .description("redraw the release until it stops running (exit 1 if it failed or was aborted)")
    .option("--every <duration>", "redraw interval", "1s")
    .action(async (name: string, o: { every: string }) => {
      const every = parseDuration(o.every);
      if (every === undefined) throw d.usage(`--every ${o.every}: not a duration`);
      const sleep = d.sleep ?? ((t: number) => new Promise((res) => setTimeout(res, t)));
      for (;;) {
        const r = await d.client().request<{ release: Release; traffic?: Observed }>("GET", `/v1/releases/${encodeURIComponent(name)}`);
        const frame = render(r.body.release, r.body.traffic);
        d.out(d.tty ? `\x1b[2J\x1b[H${frame}` : `${frame}\n`);
        const s = r.body.release.status;
        if (s !== "progressing" && s !== "paused") {
          if (s === "failed" || s === "aborted") throw d.exit(1);
          return;
        }
        await sleep(every);
      }
    });
}

const BAR = 30;

/** The release as `get` and `watch` show it. */
export function render(r: Release, traffic?: Observed): string {
  const lines: string[] = [];
  lines.push(`release ${r.name}: ${r.strategy} of lane ${r.lane} in ${r.group} — ${r.status.toUpperCase()}`);
  const filled = Math.round((r.weight / 100) * BAR);
  lines.push(`weight  [${"#".repeat(filled)}${"-".repeat(BAR - filled)}] ${r.weight}%`);
  if (traffic) {
    lines.push(`traffic observed ${percent(traffic.observedShare)} vs configured ${percent(traffic.configuredShare)} over ${traffic.requests} requests in ${traffic.windowMs / 1000}s; errors ${percent(traffic.errorRate)}, p99 ${ms(traffic.p99Ms)}`);
  }
  lines.push(`message ${r.message}`);
  lines.push("steps");
  r.steps.forEach((s, i) => {
    const mark = i < r.currentStep ? "✓" : i === r.currentStep && (r.status === "progressing" || r.status === "paused") ? "▶" : " ";
    lines.push(`  ${mark} ${i}. ${describeStep(s)}`);
  });
  for (const run of [r.analysisRun, r.backgroundRun]) {
    if (!run) continue;
    lines.push(`analysis (${run.step < 0 ? "background" : `step ${run.step}`}): ${run.successes}/${run.spec.count} passed, ${run.failures} failed (limit ${run.spec.failureLimit}), ${run.inconclusive} inconclusive, every ${run.spec.interval}`);
    for (const i of run.intervals.slice(-5)) {
      lines.push(`  ${i.at}  ${i.verdict.padEnd(12)} ${String(i.requests).padStart(6)} req  ${i.metrics.map((m) => m.reason).join("; ")}`);
    }
  }
  if (r.reason) lines.push(`reason  ${r.reason}`);
  const events = r.events.slice(-5);
  if (events.length) {
    lines.push("events");
    for (const e of events) lines.push(`  ${e.at}  ${e.type.padEnd(16)} ${e.message}`);
  }
  return lines.join("\n") + "\n";
}
