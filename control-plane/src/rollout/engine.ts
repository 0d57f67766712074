// The progressive release engine: one state machine per release, stored after every transition,
// driven by a short tick and by operations (approve, pause, ...). Each weight or match change is a
// store revision whose actor is `release/<name>`, so the rule push delivers it like any other edit
// and the revision log shows who moved traffic. In overlay mode (beside a Kubernetes store, where
// Git owns the LaneGroup spec) the change is kept in the release's own state instead (weight,
// laneMatch) and laid over the spec while the release is active (overlay.ts), so Argo CD or Flux
// never see the spec drift.
//
// Transitions of one release are serialized (a per-release promise chain), so an operation never
// races a step that is waiting on a webhook or a measurement.
import type { Store } from "../store/types.js";
import { StoreError } from "../store/types.js";
import type { FieldError } from "../model/errors.js";
import type { LaneGroup } from "../model/lanegroup.js";
import type { TrafficTotal } from "../traffic/ingest.js";
import { between, judge, prometheusValue, snapshot, type ExternalValues } from "./analysis.js";
import { refusal, type Operation } from "./operations.js";
import { overlaysOf, withOverlays } from "./overlay.js";
import type { ReleaseStore } from "./release-store.js";
import { describeStep, parseRelease, stepAnalysis, type AnalysisSpec, type ConfirmHook, type ReleaseSpec } from "./spec.js";
import { parseDuration } from "../model/duration.js";
import {
  ACTIVE, MAX_EVENTS, MAX_INTERVALS, RUNNING,
  type AnalysisRun, type LaneSetting, type Release, type ReleaseStatus,
} from "./state.js";

export { OPERATIONS, type Operation } from "./operations.js";

export interface EngineOptions {
  store: Store;
  releases: ReleaseStore;
  /** Cumulative traffic counters (the traffic ingest's persisted totals). */
  traffic?: { totals(group: string): TrafficTotal[] };
  /** Asks the filters to report now (before a measurement). */
  requestReports?: () => number;
  /** Wait after asking for reports before reading the totals (default 300 ms). */
  reportSettleMs?: number;
  /** How often due timers are checked (default 100 ms). */
  tickMs?: number;
  now?: () => number;
  fetch?: typeof fetch;
  log?: (line: string) => void;
  /** "overlay": weights and matches live in the releases, not in store revisions (see above). */
  laneSettings?: "revisions" | "overlay";
  /** Release specs written by others (kubectl, GitOps) that the engine starts, with their writer as actor. */
  adopt?: () => Array<{ spec: Record<string, unknown>; actor: string }>;
}

/** An operation or creation refused; nothing changed. */
export class ReleaseError extends StoreError {}

const DEFAULT_CONFIRM_TIMEOUT = 10_000;
const DEFAULT_CONFIRM_RETRY = 5_000;

export class ReleaseEngine {
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  private readonly log: (line: string) => void;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly busy = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Adopted specs refused, by name and content (logged once, tried again when they change). */
  private readonly refused = new Map<string, string>();

  constructor(private readonly opts: EngineOptions) {
    this.now = opts.now ?? Date.now;
    this.fetch = opts.fetch ?? fetch;
    this.log = opts.log ?? (() => {});
  }

  /** Starts the tick; releases left running by a previous process resume where they stood. */
  start(): void {
    this.stopped = false;
    const running = this.opts.releases.list({ status: [...RUNNING] });
    for (const r of running) this.log(`release ${r.name}: resuming at step ${r.currentStep} (${r.status})`);
    const tick = () => {
      if (this.stopped) return;
      this.adoptPending();
      for (const r of this.opts.releases.list({ status: [...RUNNING] })) this.kick(r.name);
      this.timer = setTimeout(tick, this.opts.tickMs ?? 100);
      this.timer.unref();
    };
    tick();
  }

  /** Starts the releases others wrote (kubectl apply of a Release); a refused one is logged once per content. */
  private adoptPending(): void {
    for (const { spec, actor } of this.opts.adopt?.() ?? []) {
      const name = String(spec.name);
      const key = JSON.stringify(spec);
      if (this.refused.get(name) === key || this.busy.has(`adopt:${name}`)) continue;
      this.busy.add(`adopt:${name}`);
      void this.create(spec, actor).then(
        () => this.log(`release ${name}: started from its object (written by ${actor})`),
        (e: Error) => {
          this.refused.set(name, key);
          this.log(`release ${name}: its object cannot start: ${e.message}`);
        },
      ).finally(() => this.busy.delete(`adopt:${name}`));
    }
  }

  /** One pass over every running release, awaited (what the tick does; tests with a manual clock call it). */
  async poll(): Promise<void> {
    await Promise.all(this.opts.releases.list({ status: [...RUNNING] }).map((r) => this.process(r.name)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await Promise.allSettled([...this.locks.values()]);
  }

  get(name: string): Release | undefined {
    return this.opts.releases.get(name);
  }

  list(filter: { group?: string; status?: ReleaseStatus[] } = {}): Release[] {
    return this.opts.releases.list(filter);
  }

  /**
   * Every check create runs, without starting anything (REST's create and the admission webhook
   * both call it): the release on its own, then against its lane group (every step applied in
   * turn) and the other releases. `existing`: the input replaces that release (an update), so
   * neither its name nor its own lane count as taken.
   */
  validate(input: unknown, opts: { existing?: string } = {}): { ok: true; value: ReleaseSpec } | { ok: false; error: ReleaseError } {
    const parsed = parseRelease(input);
    if (!parsed.ok) return { ok: false, error: new ReleaseError(400, parsed.errors) };
    const error = this.stateError(parsed.value, opts.existing);
    return error ? { ok: false, error } : parsed;
  }

  private stateError(spec: ReleaseSpec, existing?: string): ReleaseError | undefined {
    if (spec.name !== existing && this.opts.releases.get(spec.name)) return new ReleaseError(409, [{ path: "/name", message: `release ${spec.name} already exists` }]);
    const stored = this.opts.store.get(spec.group);
    if (!stored) return new ReleaseError(400, [{ path: "/group", message: `lane group ${spec.group} does not exist` }]);
    const lane = stored.lanegroup.lanes.find((l) => l.name === spec.lane);
    if (!lane) {
      const known = stored.lanegroup.lanes.map((l) => l.name).join(", ") || "none";
      return new ReleaseError(400, [{ path: "/lane", message: `lane group ${spec.group} has no lane ${spec.lane} (lanes: ${known}; the base lane cannot be released)` }]);
    }
    const busy = this.opts.releases.list({ group: spec.group, status: [...ACTIVE] }).find((r) => r.lane === spec.lane && r.name !== existing);
    if (busy) return new ReleaseError(409, [{ path: "/lane", message: `release ${busy.name} is ${busy.status} on lane ${spec.lane} of ${spec.group}: abort or finish it first` }]);
    const errors = this.simulate(this.withOtherOverlays(stored.lanegroup, spec.name), spec.lane, spec.steps);
    return errors.length ? new ReleaseError(400, errors) : undefined;
  }

  /** Validates the release (see validate) and starts it. */
  async create(input: unknown, actor: string): Promise<Release> {
    const parsed = parseRelease(input);
    if (!parsed.ok) throw new ReleaseError(400, parsed.errors);
    const spec = parsed.value;
    return this.locked(`create:${spec.group}/${spec.lane}`, async () => {
      const error = this.stateError(spec);
      if (error) throw error;
      const lane = this.opts.store.get(spec.group)!.lanegroup.lanes.find((l) => l.name === spec.lane)!;
      const at = new Date(this.now()).toISOString();
      const r: Release = {
        ...spec,
        status: "progressing",
        currentStep: 0,
        weight: lane.weight,
        message: "starting",
        initial: { weight: lane.weight, match: lane.match },
        events: [],
        createdAt: at,
        updatedAt: at,
        createdBy: actor,
      };
      this.event(r, "created", `created by ${actor}: ${spec.strategy}, ${spec.steps.map(describeStep).join(" → ")}`);
      await this.opts.releases.save(r);
      return r;
    }).then(async (r) => {
      await this.process(r.name);
      return this.opts.releases.get(r.name)!;
    });
  }

  /** Runs an operation; ReleaseError 409 when the release's state does not allow it. */
  async operate(name: string, op: Operation, actor: string): Promise<Release> {
    return this.locked(name, async () => {
      const r = this.opts.releases.get(name);
      if (!r) throw new ReleaseError(404, [{ path: "", message: `release ${name} does not exist` }]);
      const why = refusal(r, op);
      if (why !== undefined) throw new ReleaseError(409, [{ path: "", message: `cannot ${op} release ${name}: ${why}` }]);
      switch (op) {
        case "approve": {
          const reason = r.pause!.reason;
          r.pause = undefined;
          r.status = "progressing";
          r.currentStep++;
          this.event(r, "approved", `step ${r.currentStep - 1} approved by ${actor}${reason === "inconclusive" ? " (analysis was inconclusive)" : ""}`);
          break;
        }
        case "pause":
          if (r.pause?.reason === "manual") return r;
          r.pause = { reason: "manual", held: r.pause && { reason: r.pause.reason, until: r.pause.until, untilMs: r.pause.untilMs } };
          r.status = "paused";
          r.message = `paused by ${actor}`;
          this.event(r, "paused", r.message);
          break;
        case "resume":
          if (r.pause!.held) {
            r.pause = { ...r.pause!.held };
          } else {
            r.pause = undefined;
            r.status = "progressing";
          }
          this.event(r, "resumed", `resumed by ${actor}`);
          break;
        case "abort":
          await this.rollBack(r, "aborted", `aborted by ${actor}`);
          break;
        case "promote":
          await this.setLane(r, { weight: 100 });
          r.pause = undefined;
          r.currentStep = r.steps.length;
          r.status = "promoted";
          r.message = `promoted to 100% by ${actor}: finish it once the base instances run the new version`;
          this.event(r, "promoted", r.message);
          break;
        case "finish": {
          r.finishedRevision = await this.setLane(r, { weight: 0, match: [] });
          r.status = "finished";
          r.finishedAt = new Date(this.now()).toISOString();
          r.message = this.overlay
            ? `finished by ${actor}: the release no longer sets the lane, which is as its spec says`
            : `finished by ${actor}: the lane is empty again and base serves everyone`;
          this.event(r, "finished", r.message);
          break;
        }
        case "undo": {
          const prev = this.previousFinished(r);
          const target = prev ? this.laneAt(r, prev.finishedRevision!) ?? r.initial : r.initial;
          await this.setLane(r, target);
          r.pause = undefined;
          r.status = "undone";
          r.finishedAt = new Date(this.now()).toISOString();
          r.message = prev
            ? `undone by ${actor}: lane back to how release ${prev.name} left it (revision ${prev.finishedRevision})`
            : `undone by ${actor}: lane back to how it was before this release`;
          this.event(r, "undone", r.message);
          break;
        }
      }
      await this.save(r);
      return r;
    }).then(async (r) => {
      await this.process(name);
      return this.opts.releases.get(r.name)!;
    });
  }

  // ---- the state machine ----

  /** Schedules a pass over one release unless one is already queued or running. */
  private kick(name: string): void {
    if (this.busy.has(name)) return;
    this.busy.add(name);
    void this.process(name).finally(() => this.busy.delete(name));
  }

  private process(name: string): Promise<void> {
    return this.locked(name, async () => {
      const r = this.opts.releases.get(name);
      if (!r || !RUNNING.has(r.status)) return;
      const before = JSON.stringify(r);
      try {
        await this.advance(r);
      } catch (e) {
        const why = e instanceof StoreError ? e.errors.map((x) => (x.path ? `${x.path}: ${x.message}` : x.message)).join("; ") : (e as Error).message;
        this.log(`release ${name}: ${why}`);
        try {
          await this.rollBack(r, "failed", `step ${r.currentStep} could not run: ${why}`);
        } catch {
          r.status = "failed";
          r.reason = `step ${r.currentStep} could not run: ${why} (and the lane could not be set back to 0%)`;
          r.message = r.reason;
          this.event(r, "failed", r.reason);
        }
      }
      if (JSON.stringify(r) !== before) await this.save(r);
    });
  }

  private async advance(r: Release): Promise<void> {
    if (await this.background(r)) return;
    for (let guard = 0; guard <= r.steps.length + 1; guard++) {
      const now = this.now();
      if (r.status === "paused") {
        const p = r.pause!;
        if ((p.reason === "duration" || p.reason === "confirm") && p.untilMs !== undefined && p.untilMs <= now) {
          r.pause = undefined;
          r.status = "progressing";
          if (p.reason === "duration") {
            this.event(r, "step", `step ${r.currentStep} (${describeStep(r.steps[r.currentStep]!)}) done`);
            r.currentStep++;
          }
          continue;
        }
        return;
      }
      if (r.status !== "progressing") return;
      const i = r.currentStep;
      if (i >= r.steps.length) {
        await this.setLane(r, { weight: 100 });
        r.status = "promoted";
        r.message = "every step done: the lane takes 100%; finish it once the base instances run the new version";
        this.event(r, "promoted", r.message);
        return;
      }
      const hook = r.webhooks.confirm.find((h) => !h.beforeSteps || h.beforeSteps.includes(i));
      if (hook && r.confirmedStep !== i) {
        const answer = await this.confirm(r, hook, i);
        if (answer !== true) {
          const retry = parseDuration(hook.retry ?? "") ?? DEFAULT_CONFIRM_RETRY;
          r.status = "paused";
          r.pause = { reason: "confirm", untilMs: this.now() + retry, until: new Date(this.now() + retry).toISOString() };
          const msg = `waiting for ${hook.url} to confirm step ${i}: ${answer}`;
          if (r.message !== msg) this.event(r, "confirm-waiting", msg);
          r.message = msg;
          return;
        }
        r.confirmedStep = i;
        this.event(r, "confirmed", `${hook.url} confirmed step ${i}`);
      }
      const step = r.steps[i]!;
      if ("setWeight" in step || "setMatch" in step) {
        await this.setLane(r, "setWeight" in step ? { weight: step.setWeight } : { match: step.setMatch });
        this.event(r, "step", `step ${i}: ${describeStep(step)}`);
        r.message = `step ${i}: ${describeStep(step)}`;
        r.currentStep++;
        continue;
      }
      if ("pause" in step) {
        r.status = "paused";
        const ms = step.pause.duration ? parseDuration(step.pause.duration)! : undefined;
        r.pause = ms === undefined ? { reason: "approval" } : { reason: "duration", untilMs: now + ms, until: new Date(now + ms).toISOString() };
        r.message = ms === undefined ? `step ${i}: paused at ${r.weight}% until approved` : `step ${i}: paused at ${r.weight}% until ${r.pause.until}`;
        this.event(r, "paused", r.message);
        return;
      }
      // analysis
      let run = r.analysisRun;
      if (!run || run.step !== i) {
        run = r.analysisRun = await this.startRun(r, i, stepAnalysis(r, step.analysis));
        r.message = `step ${i}: analysis, ${run.spec.count} passing interval(s) of ${run.spec.interval} needed`;
        this.event(r, "analysis-started", r.message);
        return;
      }
      if (now < run.nextAt) return;
      await this.measure(r, run);
      const last = run.intervals.at(-1)!;
      if (run.failures > run.spec.failureLimit) {
        await this.rollBack(r, "failed", `analysis failed ${run.failures} time(s) (limit ${run.spec.failureLimit}): ${failReasons(last)}`);
        return;
      }
      if (run.successes >= run.spec.count) {
        this.event(r, "analysis-passed", `step ${i}: analysis passed ${run.successes} interval(s)`);
        r.currentStep++;
        continue;
      }
      r.message = `step ${i}: analysis ${run.successes}/${run.spec.count} passed, ${run.failures} failed, ${run.inconclusive} inconclusive (last: ${last.verdict})`;
      if (this.now() - Date.parse(run.startedAt) >= run.spec.deadlineMs) {
        const why = `analysis reached its deadline ${run.spec.deadline} with ${run.successes}/${run.spec.count} passing intervals (last: ${last.verdict}, ${last.requests} lane requests)`;
        if (run.spec.onInconclusive === "abort") await this.rollBack(r, "failed", why);
        else {
          r.status = "paused";
          r.pause = { reason: "inconclusive" };
          r.message = `${why}: paused; approve to go on, or abort`;
          this.event(r, "paused", r.message);
        }
      }
      return;
    }
  }

  /** The Flagger-style analysis over the whole release; true when it rolled the release back. */
  private async background(r: Release): Promise<boolean> {
    if (!r.analysis.background || r.weight <= 0 || r.pause?.reason === "manual") return false;
    const run = r.backgroundRun;
    if (!run) {
      r.backgroundRun = await this.startRun(r, -1, r.analysis);
      return false;
    }
    if (this.now() < run.nextAt) return false;
    await this.measure(r, run);
    if (run.failures > run.spec.failureLimit) {
      await this.rollBack(r, "failed", `background analysis failed ${run.failures} time(s) (limit ${run.spec.failureLimit}): ${failReasons(run.intervals.at(-1)!)}`);
      return true;
    }
    return false;
  }

  private async startRun(r: Release, step: number, spec: AnalysisSpec): Promise<AnalysisRun> {
    const snap = await this.readCounters(r);
    return { step, spec, startedAt: new Date(this.now()).toISOString(), nextAt: this.now() + spec.intervalMs, successes: 0, failures: 0, inconclusive: 0, intervals: [], snapshot: snap };
  }

  private async measure(r: Release, run: AnalysisRun): Promise<void> {
    const [snap, external] = await Promise.all([this.readCounters(r), this.external(r, run.spec)]);
    const result = judge(run.spec, between(run.snapshot, snap), external, new Date(this.now()));
    run.snapshot = snap;
    run.nextAt = this.now() + run.spec.intervalMs;
    run.intervals.push(result);
    if (run.intervals.length > MAX_INTERVALS) run.intervals.splice(0, run.intervals.length - MAX_INTERVALS);
    if (result.verdict === "pass") run.successes++;
    else if (result.verdict === "fail") run.failures++;
    else run.inconclusive++;
    this.event(r, `analysis-${result.verdict}`, `${run.step < 0 ? "background" : `step ${run.step}`}: ${result.verdict}, ${result.requests} lane / ${result.baseRequests} base requests; ${result.metrics.map((m) => m.reason).join("; ")}`);
  }

  private async readCounters(r: Release) {
    if (this.opts.requestReports && this.opts.requestReports() > 0) await sleep(this.opts.reportSettleMs ?? 300);
    const group = this.opts.store.get(r.group)?.lanegroup;
    const services = group?.lanes.find((l) => l.name === r.lane)?.services ?? [];
    return snapshot(this.opts.traffic?.totals(r.group) ?? [], r.lane, group?.baseLane ?? "base", services);
  }

  private async external(r: Release, spec: AnalysisSpec): Promise<ExternalValues> {
    const out: ExternalValues = new Map();
    await Promise.all(spec.metrics.map(async (m, i) => {
      if (m.name !== "prometheus") return;
      const q = m.query.replaceAll("$group", r.group).replaceAll("$lane", r.lane).replaceAll("$interval", spec.interval);
      out.set(i, await prometheusValue(m.address, q, Math.min(spec.intervalMs, 10_000), this.fetch));
    }));
    return out;
  }

  private async confirm(r: Release, hook: ConfirmHook, step: number): Promise<true | string> {
    try {
      const res = await this.fetch(hook.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "confirm", step, release: summary(r) }),
        signal: AbortSignal.timeout(parseDuration(hook.timeout ?? "") ?? DEFAULT_CONFIRM_TIMEOUT),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? true : `it answered ${res.status}`;
    } catch (e) {
      return `it could not be reached (${(e as Error).message})`;
    }
  }

  // ---- effects ----

  /** Weight 0 and the lane's match as it was before the release; the release ends as `status`. */
  private async rollBack(r: Release, status: "aborted" | "failed", reason: string): Promise<void> {
    await this.setLane(r, { weight: 0, match: r.initial.match });
    r.status = status;
    r.pause = undefined;
    r.reason = reason;
    r.finishedAt = new Date(this.now()).toISOString();
    r.message = `${status === "failed" ? "rolled back to 0%" : "aborted at 0%"}: ${reason}`;
    this.event(r, status === "failed" ? "rolled-back" : "aborted", r.message);
  }

  private get overlay(): boolean {
    return this.opts.laneSettings === "overlay";
  }

  /** In overlay mode: the group as the other active releases (not `except`) leave it. */
  private withOtherOverlays(group: LaneGroup, except: string): LaneGroup {
    if (!this.overlay) return group;
    const others = this.opts.releases.list({ group: group.name, status: [...ACTIVE] }).filter((x) => x.name !== except);
    return withOverlays(group, overlaysOf(others).get(group.name));
  }

  /**
   * Writes the lane's weight and/or match as a new revision (none when nothing changes); in overlay
   * mode into the release (saved with it), checked against the spec as a revision would be.
   */
  private async setLane(r: Release, to: Partial<LaneSetting>): Promise<number | undefined> {
    const stored = this.opts.store.get(r.group);
    if (!stored) throw new ReleaseError(409, [{ path: "", message: `lane group ${r.group} no longer exists` }]);
    const lane = stored.lanegroup.lanes.find((l) => l.name === r.lane);
    if (!lane) throw new ReleaseError(409, [{ path: "", message: `lane group ${r.group} no longer has lane ${r.lane}` }]);
    if (this.overlay) {
      const weight = to.weight ?? r.weight;
      const match = (to.match ?? r.laneMatch ?? lane.match) as LaneGroup["lanes"][number]["match"];
      // Checked with the other active releases' overlays in place: together they must still be a valid group.
      const others = this.withOtherOverlays(stored.lanegroup, r.name);
      const v = this.opts.store.validate({ ...others, lanes: others.lanes.map((l) => (l.name === r.lane ? { ...l, weight, match } : l)) });
      if (!v.ok) throw new ReleaseError(409, v.errors);
      r.weight = weight;
      r.laneMatch = match;
      return undefined;
    }
    const weight = to.weight ?? lane.weight;
    const match = (to.match ?? lane.match) as LaneGroup["lanes"][number]["match"];
    r.weight = weight;
    if (weight === lane.weight && JSON.stringify(match) === JSON.stringify(lane.match)) return undefined;
    const lanegroup = { ...stored.lanegroup, lanes: stored.lanegroup.lanes.map((l) => (l.name === r.lane ? { ...l, weight, match } : l)) };
    return (await this.opts.store.put(lanegroup, { actor: `release/${r.name}` })).revision;
  }

  /** Checks each weight/match step against the group as the steps before it left it. */
  private simulate(group: LaneGroup, laneName: string, steps: Release["steps"]): FieldError[] {
    let g = group;
    for (const [i, s] of steps.entries()) {
      if (!("setWeight" in s) && !("setMatch" in s)) continue;
      const next = { ...g, lanes: g.lanes.map((l) => (l.name === laneName ? { ...l, ...("setWeight" in s ? { weight: s.setWeight } : { match: s.setMatch as typeof l.match }) } : l)) };
      const v = this.opts.store.validate(next);
      if (!v.ok) {
        const at = g.lanes.findIndex((l) => l.name === laneName);
        const prefix = `/lanes/${at}/match`;
        return v.errors.map((e) => ("setMatch" in s && e.path.startsWith(prefix)
          ? { path: `/steps/${i}/setMatch${e.path.slice(prefix.length)}`, message: e.message }
          : { path: `/steps/${i}/${"setWeight" in s ? "setWeight" : "setMatch"}`, message: `${e.path ? `lane group ${e.path}: ` : ""}${e.message}` }));
      }
      g = v.value;
    }
    return [];
  }

  private previousFinished(r: Release): Release | undefined {
    return this.opts.releases.list({ group: r.group, status: ["finished"] })
      .filter((p) => p.name !== r.name && p.lane === r.lane && p.finishedRevision !== undefined && p.createdAt <= r.createdAt)
      .sort((a, b) => (a.finishedAt! < b.finishedAt! ? 1 : -1))[0];
  }

  private laneAt(r: Release, revision: number): LaneSetting | undefined {
    const lane = this.opts.store.revision(revision)?.lanegroups.find((g) => g.name === r.group)?.lanes.find((l) => l.name === r.lane);
    return lane && { weight: lane.weight, match: lane.match };
  }

  private event(r: Release, type: string, message: string): void {
    const at = new Date(this.now()).toISOString();
    r.events.push({ at, type, message });
    if (r.events.length > MAX_EVENTS) r.events.splice(0, r.events.length - MAX_EVENTS);
    r.updatedAt = at;
    this.log(`release ${r.name}: ${type}: ${message}`);
    for (const url of r.webhooks.events) {
      // Best effort: a slow or failing receiver never holds the release.
      void this.fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type, message, at, release: summary(r) }),
        signal: AbortSignal.timeout(5000),
      }).then((res) => res.arrayBuffer()).catch(() => undefined);
    }
  }

  private async save(r: Release): Promise<void> {
    r.updatedAt = new Date(this.now()).toISOString();
    await this.opts.releases.save(r);
  }

  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(key, tail);
    void tail.then(() => { if (this.locks.get(key) === tail) this.locks.delete(key); });
    return next;
  }
}

function summary(r: Release) {
  return { name: r.name, group: r.group, lane: r.lane, status: r.status, currentStep: r.currentStep, weight: r.weight, message: r.message };
}

function failReasons(i: { metrics: Array<{ verdict: string; reason: string }> }): string {
  return i.metrics.filter((m) => m.verdict === "fail").map((m) => m.reason).join("; ") || "no failing metric";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
