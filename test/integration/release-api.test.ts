// /v1/releases over HTTP and `graylane release ...`, against a real control plane (REST, gRPC, SQLite
// file): create/refuse, operations and their 409s, the OpenAPI paths, a restart that resumes a timed
// pause, and `watch` redrawing until the release ends.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { main } from "../../control-plane/src/cli/main.js";
import { parseSteps, render } from "../../control-plane/src/cli/release-command.js";
import { TestServer } from "../support/api.js";
import { Ajv2020 } from "ajv/dist/2020.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
let t: TestServer;

beforeAll(async () => {
  t = await TestServer.start({ rollout: { tickMs: 20, reportSettleMs: 0 } });
  expect((await t.call("PUT", "/v1/lanegroups/mock", demoGroup)).status).toBe(201);
});
afterAll(async () => { await t.stop(); });

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: { GRAYLANE_SERVER: t.url, GRAYLANE_ACTOR: "cli" } });
  return { code, out, err };
}
const weight = async () => (await t.call("GET", "/v1/lanegroups/mock")).body.lanegroup.lanes[0].weight;
async function until(f: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("/v1/releases", () => {
  it("creates (201, Location), lists, refuses bad input with paths (400) and a second release on the lane (409)", async () => {
    const bad = await t.call("POST", "/v1/releases", { name: "a1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { wait: 1 }], analysis: { metrics: [{ name: "error-rate", max: 2 }] } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(["/analysis/metrics/0/max", "/steps/1"]);
    expect((await t.call("GET", "/v1/releases")).body.releases).toEqual([]);

    const ok = await t.call("POST", "/v1/releases", { name: "a1", group: "mock", lane: "canary" }, { "x-graylane-actor": "alice" });
    expect(ok.status).toBe(201);
    expect(ok.headers.get("location")).toBe("/v1/releases/a1");
    expect(ok.body.release).toMatchObject({ name: "a1", status: "paused", weight: 10, createdBy: "alice" });
    expect(await weight()).toBe(10);
    expect((await t.call("GET", "/v1/revisions?limit=1")).body.revisions[0]).toMatchObject({ actor: "release/a1" });

    const again = await t.call("POST", "/v1/releases", { name: "a2", group: "mock", lane: "canary" });
    expect(again.status).toBe(409);
    expect(again.body.errors[0].message).toContain("release a1 is paused");
    expect((await t.call("GET", "/v1/releases?status=paused&group=mock")).body.releases.map((r: { name: string }) => r.name)).toEqual(["a1"]);
    expect((await t.call("GET", "/v1/releases?status=nope")).status).toBe(400);

    const one = await t.call("GET", "/v1/releases/a1");
    expect(one.body.traffic).toMatchObject({ configuredShare: 0.1, requests: 0 });
    expect((await t.call("GET", "/v1/releases/nope")).status).toBe(404);
    expect((await t.call("POST", "/v1/releases/a1/jump")).status).toBe(404);
    expect((await t.call("POST", "/v1/releases/a1/resume")).status).toBe(409);
    expect((await t.call("POST", "/v1/releases/a1/abort", undefined, { "x-graylane-actor": "bob" })).body.release).toMatchObject({ status: "aborted", reason: "aborted by bob" });
    expect(await weight()).toBe(0);
  });

  it("is in /openapi.json, with every route the engine serves", async () => {
    const doc = (await t.call("GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/releases", "/v1/releases/{name}", "/v1/releases/{name}/{op}"]));
    expect(doc.paths["/v1/releases/{name}/{op}"].parameters[1].schema.enum).toEqual(["approve", "pause", "resume", "abort", "promote", "finish", "undo"]);
    const release = doc.paths["/v1/releases/{name}"].get.responses[200].content["application/json"].schema.properties.release;
    expect(release.required).toContain("allowedOperations");
    expect(release.properties.allowedOperations.items.enum).toEqual(["approve", "pause", "resume", "abort", "promote", "finish", "undo"]);
  });

  it("serves each release with the operations its state allows, in every answer, which fits the OpenAPI schema", async () => {
    // Every release answered below, in each state, is checked against the documented schema too.
    const doc = (await t.call("GET", "/openapi.json")).body;
    const fits = new Ajv2020({ strict: false, allErrors: true }).compile(doc.paths["/v1/releases/{name}"].get.responses[200].content["application/json"].schema);
    const checked = (body: unknown) => {
      expect(fits(body), JSON.stringify(fits.errors)).toBe(true);
      return body as { release: { allowedOperations: string[] } };
    };
    const ops = async (name: string) => checked((await t.call("GET", `/v1/releases/${name}`)).body).release.allowedOperations;
    const listed = async (name: string) => {
      const releases = (await t.call("GET", "/v1/releases")).body.releases as Array<{ name: string; allowedOperations: string[] }>;
      for (const release of releases) checked({ release });
      return releases.find((r) => r.name === name)!.allowedOperations;
    };
    const operate = async (name: string, op: string) => {
      const r = await t.call("POST", `/v1/releases/${name}/${op}`);
      expect(r.status, `${op}: ${JSON.stringify(r.body)}`).toBe(200);
      return checked(r.body).release.allowedOperations;
    };

    const created = await t.call("POST", "/v1/releases", { name: "o1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }] });
    expect(checked(created.body).release).toMatchObject({ status: "paused", pause: { reason: "approval" }, allowedOperations: ["approve", "pause", "abort", "promote"] });
    expect(await ops("o1")).toEqual(["approve", "pause", "abort", "promote"]);
    expect(await operate("o1", "pause")).toEqual(["resume", "abort", "promote"]);
    expect(await listed("o1")).toEqual(["resume", "abort", "promote"]);
    expect((await t.call("POST", "/v1/releases/o1/approve")).status).toBe(409); // not offered, and refused
    expect(await operate("o1", "resume")).toEqual(["approve", "pause", "abort", "promote"]);
    expect(await operate("o1", "promote")).toEqual(["abort", "finish", "undo"]);
    expect(await operate("o1", "finish")).toEqual(["undo"]);
    expect(await listed("o1")).toEqual(["undo"]);
    expect(await operate("o1", "undo")).toEqual([]);
    expect((await t.call("POST", "/v1/releases/o1/undo")).status).toBe(409);

    // Progressing (an analysis step measuring), then aborted.
    await t.call("POST", "/v1/releases", { name: "o2", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { analysis: { interval: "1h" } }] });
    expect(checked((await t.call("GET", "/v1/releases/o2")).body).release).toMatchObject({ status: "progressing", analysisRun: { step: 1 }, allowedOperations: ["pause", "abort", "promote"] });
    expect(await operate("o2", "abort")).toEqual(["undo"]);

    // Paused until a confirm webhook says yes: approving is not the way on.
    const confirm = await t.call("POST", "/v1/releases", { name: "o3", group: "mock", lane: "canary", webhooks: { confirm: [{ url: "http://127.0.0.1:9/nobody", timeout: "200ms", retry: "1h" }] } });
    expect(checked(confirm.body).release).toMatchObject({ status: "paused", pause: { reason: "confirm" }, allowedOperations: ["pause", "abort", "promote"] });
    expect(await operate("o3", "abort")).toEqual(["undo"]);
    expect(await weight()).toBe(0);
    expect(await listed("o3")).toEqual(["undo"]); // and every release so far fits the schema
    // The schema is no blank cheque: a release missing a field, or with one it does not have, does not fit.
    const one = (await t.call("GET", "/v1/releases/o1")).body;
    expect(fits({ release: { ...one.release, allowedOperations: undefined } })).toBe(false);
    expect(fits({ release: { ...one.release, colour: "red" } })).toBe(false);
    expect(fits({ release: { ...one.release, status: "sleeping" } })).toBe(false);
  });

  it("a restarted control plane resumes a timed pause and finishes the release", async () => {
    const r = await t.call("POST", "/v1/releases", { name: "b1", group: "mock", lane: "canary", steps: [{ setWeight: 20 }, { pause: { duration: "1500ms" } }, { setWeight: 60 }] });
    expect(r.body.release).toMatchObject({ status: "paused", weight: 20 });
    const until_ = r.body.release.pause.until;
    await t.restart();
    const after = (await t.call("GET", "/v1/releases/b1")).body.release;
    expect(after).toMatchObject({ status: "paused", currentStep: 1, pause: { reason: "duration", until: until_ } });
    await until(async () => (await t.call("GET", "/v1/releases/b1")).body.release.status === "promoted");
    expect(await weight()).toBe(100);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(until_));
    await t.call("POST", "/v1/releases/b1/finish");
    expect(await weight()).toBe(0);
  });
});

describe("graylane release", () => {
  it("create with --steps, get, list, approve, watch to the end, and usage errors", async () => {
    expect(parseSteps("10, pause, 50%, pause:5m, analysis, 100")).toEqual([{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: { duration: "5m" } }, { analysis: {} }, { setWeight: 100 }]);
    expect(() => parseSteps("10,wait")).toThrow("step wait: want a weight (10), pause, pause:DURATION or analysis");

    let r = await run("release", "create", "--name", "c1", "--group", "mock", "--lane", "canary", "--steps", "10,pause,40,pause:300ms,70");
    expect(r.code).toBe(0);
    expect(r.out).toContain("release c1: canary of lane canary in mock — PAUSED");
    expect(r.out).toContain("[###---------------------------] 10%");
    expect(r.out).toContain("  ▶ 1. pause until approved");
    r = await run("release", "list");
    expect(r.out).toMatch(/c1\s+mock\s+canary\s+canary\s+paused\s+2\/5\s+10%/);
    r = await run("release", "approve", "c1");
    expect(r).toMatchObject({ code: 0, out: expect.stringContaining("release c1: paused, 40%") });
    r = await run("release", "watch", "c1", "--every", "100ms");
    expect(r.code).toBe(0);
    const frames = r.out.split("release c1: canary").length - 1;
    expect(frames).toBeGreaterThanOrEqual(2); // redrawn while the timed pause ran
    expect(r.out.trimEnd().split("\n\n").at(-1)).toContain("PROMOTED");
    r = await run("release", "approve", "c1");
    expect(r.code).toBe(1);
    expect(r.err).toContain("cannot approve release c1: it is promoted, not paused");
    r = await run("-o", "json", "release", "get", "c1");
    expect(JSON.parse(r.out).release).toMatchObject({ status: "promoted", weight: 100 });
    expect((await run("release", "finish", "c1")).code).toBe(0);

    const spec = join(t.dir, "rel.yaml");
    writeFileSync(spec, stringify({ name: "c2", group: "mock", lane: "canary", steps: [{ setWeight: 30 }, { analysis: { interval: "100ms", minRequests: 5, deadline: "300ms" } }] }));
    r = await run("release", "create", "-f", spec);
    expect(r.code).toBe(0);
    r = await run("release", "watch", "c2", "--every", "50ms");
    expect(r.code).toBe(1); // no traffic: inconclusive until the deadline, rolled back
    expect(r.out).toContain("FAILED");
    expect(r.out).toContain("inconclusive");
    expect(await weight()).toBe(0);

    expect((await run("release", "create", "--name", "c3")).code).toBe(2);
    expect((await run("release", "create", "--name", "c3", "--group", "mock", "--lane", "canary", "--steps", "10,jump")).code).toBe(2);
  });

  it("render shows the observed share next to the configured one", () => {
    const r = { name: "x", group: "g", lane: "canary", strategy: "canary", status: "progressing", weight: 50, currentStep: 1, message: "m", steps: [{ setWeight: 50 }, { analysis: {} }], events: [] } as never;
    expect(render(r, { windowMs: 30_000, requests: 1000, observedShare: 0.497, configuredShare: 0.5, errorRate: 0.001, p99Ms: 12.5 }))
      .toContain("traffic observed 49.7% vs configured 50% over 1000 requests in 30s; errors 0.1%, p99 12.5ms");
  });
});
