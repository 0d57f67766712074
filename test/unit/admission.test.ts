// The admission webhook's answer (api/admission.ts) as a pure function: the validators are the
// ones REST uses (store/checks.ts validateAmong behind Store.validate, ReleaseEngine.validate), over
// groups held in memory. Every REST error reappears at its object path, all at once; and which
// LaneGroup objects the RuleSet holds when some are invalid anyway (model/kube.ts).
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { admit, denial, restValidators, type AdmissionResponse } from "../../control-plane/src/api/admission.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { modelDocument, objectPath, selectLaneGroups, type KubeObject } from "../../control-plane/src/model/kube.js";
import { ReleaseEngine } from "../../control-plane/src/rollout/engine.js";
import type { ReleaseStore } from "../../control-plane/src/rollout/release-store.js";
import type { Release } from "../../control-plane/src/rollout/state.js";
import { validateAmong } from "../../control-plane/src/store/checks.js";
import type { Store, StoredGroup } from "../../control-plane/src/store/types.js";
import type { FieldError } from "../../control-plane/src/model/errors.js";
import { DEFAULT_WEBHOOK_PORT, webhookConfiguration, webhookYaml } from "../../control-plane/src/api/webhook-config.js";
import { parseAllDocuments } from "yaml";

const mock = JSON.parse(readFileSync("test/fixtures/lanegroup-mock.json", "utf8"));
const { name: _name, ...mockSpec } = mock;

/** The store's validate over groups in memory: what REST's PUT runs (store/checks.ts). */
function memoryStore(groups: unknown[]): Pick<Store, "validate" | "get"> {
  const stored: StoredGroup[] = groups.map((g, i) => {
    const r = parseLaneGroup(g);
    if (!r.ok) throw new Error(`fixture ${i}: ${JSON.stringify(r.errors)}`);
    return { name: r.value.name, revision: i + 1, lanegroup: r.value };
  });
  return { validate: (input) => validateAmong(stored, input), get: (n) => stored.find((g) => g.name === n) };
}

function memoryReleases(list: Release[] = []): ReleaseStore {
  return { get: (n) => list.find((r) => r.name === n), list: (f = {}) => list.filter((r) => (!f.group || r.group === f.group) && (!f.status || f.status.includes(r.status))), save: (r) => void list.push(r) };
}

const store = memoryStore([mock, { name: "other", services: [{ name: "pay", paths: ["/pay"] }] }]);
const engine = new ReleaseEngine({ store: store as Store, releases: memoryReleases() });
const validators = restValidators(store, engine);

let uids = 0;
function reviewOf(object: unknown, opts: { operation?: string; kind?: string; oldObject?: unknown } = {}) {
  return {
    apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
    request: {
      uid: `uid-${++uids}`, kind: { group: "graylane.io", version: "v1alpha1", kind: opts.kind ?? "LaneGroup" },
      resource: { group: "graylane.io", version: "v1alpha1", resource: opts.kind === "Release" ? "releases" : "lanegroups" },
      name: (object as KubeObject)?.metadata?.name, operation: opts.operation ?? "CREATE",
      userInfo: { username: "admin", groups: ["system:masters"] },
      object, oldObject: opts.oldObject ?? null, dryRun: false,
    },
  };
}
const laneGroup = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name }, spec });
const release = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "graylane.io/v1alpha1", kind: "Release", metadata: { name }, spec });

function responseOf(body: unknown, opts?: Parameters<typeof reviewOf>[1]): AdmissionResponse {
  const review = reviewOf(body, opts);
  const answer = admit(review, validators);
  expect(answer.status).toBe(200);
  const out = answer.body as { apiVersion: string; kind: string; response: AdmissionResponse };
  expect(out).toMatchObject({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" });
  expect(out.response.uid).toBe(review.request.uid);
  return out.response;
}

/** REST's errors for a document: what PUT /v1/lanegroups/NAME answers (the store's validate). */
function restErrors(document: unknown): FieldError[] {
  const v = store.validate(document);
  if (v.ok) throw new Error("REST accepts it");
  return v.errors;
}

/** Each of REST's errors at its /spec (or /metadata/name) path, in message and causes. */
function expectSameAsRest(r: AdmissionResponse, rest: FieldError[]) {
  expect(r.allowed).toBe(false);
  expect(r.status).toMatchObject({ status: "Failure", code: 422, reason: "Invalid" });
  const expected = rest.map((e) => ({ reason: "FieldValueInvalid", field: objectPath(e.path), message: e.message }));
  expect(r.status!.details!.causes).toEqual(expected);
  for (const e of expected) expect(r.status!.message).toContain(`${e.field}: ${e.message}`);
}

describe("admission: LaneGroup", () => {
  it("allows a valid object, on CREATE and on UPDATE", () => {
    expect(responseOf(laneGroup("fresh", { services: [{ name: "fresh-svc" }] }))).toEqual({ uid: expect.any(String), allowed: true });
    // The stored group itself, replaced: its own services are no conflict.
    const updated = laneGroup("mock", { ...mockSpec, lanes: [{ ...mockSpec.lanes[0], weight: 20 }] });
    expect(responseOf(updated, { operation: "UPDATE", oldObject: laneGroup("mock", mockSpec) }).allowed).toBe(true);
  });

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["weight over 100", { services: [{ name: "a" }], lanes: [{ name: "c", weight: 150 }] }, "/spec/lanes/0/weight"],
    ["weights over 100 in sum", { services: [{ name: "a" }], lanes: [{ name: "c", weight: 60 }, { name: "d", weight: 60 }] }, "/spec/lanes"],
    ["unknown lane service", { services: [{ name: "a" }], lanes: [{ name: "c", services: ["zz"] }] }, "/spec/lanes/0/services/0"],
    ["fallback loop", { services: [{ name: "a" }], lanes: [{ name: "c", fallback: "d" }, { name: "d", fallback: "c" }] }, "/spec/lanes/0/fallback"],
    ["duplicate lane", { services: [{ name: "a" }], lanes: [{ name: "c" }, { name: "c" }] }, "/spec/lanes/1/name"],
    ["bad regex", { services: [{ name: "a" }], lanes: [{ name: "c", match: [{ uri: { regex: "(" } }] }] }, "/spec/lanes/0/match/0/uri/regex"],
    ["a service of another group", { services: [{ name: "mockb" }] }, "/spec/services/0/name"],
    ["a host of another group", { services: [{ name: "x", hosts: ["mocka.default.svc.cluster.local"] }] }, "/spec/services/0/hosts/0"],
    ["an edge path of another group", { services: [{ name: "x", paths: ["/pay"] }] }, "/spec/services/0/paths/0"],
    ["no services", { services: [] }, "/spec/services"],
  ];
  for (const [what, spec, path] of cases) {
    it(`refuses ${what} with REST's message at ${path}`, () => {
      const rest = restErrors({ ...spec, name: "g" });
      const r = responseOf(laneGroup("g", spec));
      expectSameAsRest(r, rest);
      expect(r.status!.details!.causes.map((c) => c.field)).toContain(path);
      expect(r.status!.details).toMatchObject({ name: "g", group: "graylane.io", kind: "lanegroups" });
      expect(r.status!.message).toMatch(/^LaneGroup g: /);
    });
  }

  it("names the object by metadata.name: a bad name is refused at /metadata/name", () => {
    const r = responseOf(laneGroup("Bad.Name", { services: [{ name: "a" }] }));
    expectSameAsRest(r, restErrors({ name: "Bad.Name", services: [{ name: "a" }] }));
    expect(r.status!.details!.causes).toEqual([{ reason: "FieldValueInvalid", field: "/metadata/name", message: expect.stringMatching(/lowercase/) }]);
    // The name lives in metadata only.
    const named = responseOf(laneGroup("g", { name: "g", services: [{ name: "a" }] }));
    expect(named.status!.details!.causes).toEqual([{ reason: "FieldValueInvalid", field: "/spec/name", message: "unknown field name (the name is metadata.name)" }]);
  });

  it("reports several problems at once", () => {
    const spec = {
      services: [{ name: "mocka" }, { name: "x", hosts: ["a:80"] }],
      lanes: [{ name: "c", weight: 70, services: ["nope"] }, { name: "d", weight: 70, fallback: "zz" }, { name: "base" }],
      laneHeader: "bad header",
    };
    const rest = restErrors({ ...spec, name: "g" });
    expect(rest.length).toBeGreaterThanOrEqual(4);
    const r = responseOf(laneGroup("g", spec));
    expectSameAsRest(r, rest);
    expect(r.status!.details!.causes.map((c) => c.field)).toEqual(expect.arrayContaining(["/spec/services/1/hosts/0", "/spec/laneHeader", "/spec/lanes/2/name"]));
    expect(r.status!.message.split("; ")).toHaveLength(rest.length);
  });

  it("names unknown spec fields with their paths (the model refuses unknown keys)", () => {
    const spec = { services: [{ name: "a", port: 80 }], colour: "red", lanes: [{ name: "c", wieght: 5, match: [{ headers: { h: { exact: "1", glob: "*" } } }] }] };
    // The zod model itself refuses them, each at its own path.
    const model = parseLaneGroup({ ...spec, name: "g" });
    expect(model.ok).toBe(false);
    expect((model as { errors: FieldError[] }).errors).toEqual(expect.arrayContaining([
      { path: "/colour", message: "unknown field colour" },
      { path: "/services/0/port", message: "unknown field port" },
      { path: "/lanes/0/wieght", message: "unknown field wieght" },
      { path: "/lanes/0/match/0/headers/h/glob", message: "unknown field glob" },
    ]));
    const r = responseOf(laneGroup("g", spec));
    expectSameAsRest(r, restErrors({ ...spec, name: "g" }));
    expect(r.status!.details!.causes.map((c) => c.field)).toEqual(expect.arrayContaining(["/spec/colour", "/spec/services/0/port", "/spec/lanes/0/wieght", "/spec/lanes/0/match/0/headers/h/glob"]));
  });

  it("refuses a spec that is no object, and takes a missing spec as empty", () => {
    expect(responseOf({ ...laneGroup("g", {}), spec: [1] }).status!.details!.causes).toEqual([{ reason: "FieldValueInvalid", field: "/spec", message: "must be an object" }]);
    const missing = responseOf({ apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: "g" } });
    expectSameAsRest(missing, restErrors({ name: "g" }));
  });

  it("allows DELETE, and an UPDATE that leaves the spec alone or finishes a deletion", () => {
    expect(responseOf(null, { operation: "DELETE", oldObject: laneGroup("mock", mockSpec) })).toEqual({ uid: expect.any(String), allowed: true });
    // Written while the webhook was down: its finalizers and labels can still change.
    const invalid = laneGroup("bad", { services: [] });
    expect(responseOf({ ...invalid, metadata: { name: "bad", labels: { a: "b" } } }, { operation: "UPDATE", oldObject: invalid }).allowed).toBe(true);
    expect(responseOf({ ...invalid, metadata: { name: "bad", deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [] } }, { operation: "UPDATE", oldObject: invalid }).allowed).toBe(true);
    // A new spec is judged.
    expect(responseOf(laneGroup("bad", { services: [], lanes: [] }), { operation: "UPDATE", oldObject: invalid }).allowed).toBe(false);
  });
});

describe("admission: Release", () => {
  const rel = { group: "mock", lane: "canary" };
  it("allows a valid release", () => {
    expect(responseOf(release("r1", rel), { kind: "Release" }).allowed).toBe(true);
  });

  it("answers REST's errors (the engine's validate), at /spec paths, all at once", () => {
    const spec = { group: "mock", lane: "canary", strategy: "blueGreen", steps: [{ setWeight: 30 }], webhooks: { confirm: [{ url: "http://x", beforeSteps: [5] }] } };
    const v = engine.validate({ ...spec, name: "r1" });
    expect(v.ok).toBe(false);
    const rest = (v as { error: { errors: FieldError[] } }).error.errors;
    expect(rest).toHaveLength(2);
    const r = responseOf(release("r1", spec), { kind: "Release" });
    expectSameAsRest(r, rest);
    expect(r.status!.details!.causes.map((c) => c.field)).toEqual(["/spec/steps/0/setWeight", "/spec/webhooks/confirm/0/beforeSteps/0"]);
    expect(r.status!.details!.kind).toBe("releases");
  });

  it("checks the release against its lane group", () => {
    const noLane = responseOf(release("r1", { group: "mock", lane: "blue" }), { kind: "Release" });
    expect(noLane.status!.details!.causes).toEqual([{ reason: "FieldValueInvalid", field: "/spec/lane", message: expect.stringContaining("lane group mock has no lane blue") }]);
    const noGroup = responseOf(release("r1", { group: "nope", lane: "canary" }), { kind: "Release" });
    expect(noGroup.status!.details!.causes[0]).toMatchObject({ field: "/spec/group", message: "lane group nope does not exist" });
    // A step that would break the group: the group's rule, at the step.
    const over = responseOf(release("r1", { ...rel, steps: [{ setMatch: [{}] }] }), { kind: "Release" });
    expect(over.status!.details!.causes[0]).toMatchObject({ field: "/spec/steps/0/setMatch/0", message: "a match block needs at least one condition" });
  });

  it("a lane taken by an active release is a conflict (409), except for that release's own update", () => {
    const busy = { name: "r0", group: "mock", lane: "canary", status: "progressing" } as Release;
    const e2 = new ReleaseEngine({ store: store as Store, releases: memoryReleases([busy]) });
    const v = restValidators(store, e2);
    const created = (admit(reviewOf(release("r1", rel), { kind: "Release" }), v).body as { response: AdmissionResponse }).response;
    expect(created.status).toMatchObject({ code: 409, reason: "Conflict" });
    expect(created.status!.details!.causes[0]).toMatchObject({ field: "/spec/lane", message: expect.stringContaining("release r0 is progressing") });
    const own = (admit(reviewOf(release("r0", { ...rel, steps: [{ setWeight: 5 }] }), { kind: "Release", operation: "UPDATE", oldObject: release("r0", rel) }), v).body as { response: AdmissionResponse }).response;
    expect(own.allowed).toBe(true);
  });

  it("refuses Releases when the control plane runs no release engine", () => {
    const r = (admit(reviewOf(release("r1", rel), { kind: "Release" }), restValidators(store)).body as { response: AdmissionResponse }).response;
    expect(r.allowed).toBe(false);
    expect(r.status!.message).toContain("runs no release engine");
  });
});

describe("admission: malformed reviews", () => {
  const errorsOf = (body: unknown) => {
    const a = admit(body, validators);
    expect(a.status).toBe(400);
    return (a.body as { errors: FieldError[] }).errors;
  };
  it("answers 400 naming what is wrong when the body is no AdmissionReview v1", () => {
    expect(errorsOf("hello")).toEqual([{ path: "", message: "not an AdmissionReview admission.k8s.io/v1: the body must be a JSON object" }]);
    expect(errorsOf({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: { uid: "u" } })).toEqual([
      { path: "/apiVersion", message: 'not an AdmissionReview admission.k8s.io/v1: must be admission.k8s.io/v1 (got "admission.k8s.io/v1beta1")' },
    ]);
    expect(errorsOf({ apiVersion: "admission.k8s.io/v1", kind: "Review" }).map((e) => e.path)).toEqual(["/kind", "/request"]);
    expect(errorsOf({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: 3 } })).toEqual([
      { path: "/request/uid", message: "not an AdmissionReview admission.k8s.io/v1: is required (a string)" },
    ]);
  });

  it("refuses, with the reason, a review with a uid but no usable request", () => {
    const base = reviewOf(laneGroup("g", { services: [{ name: "a" }] }));
    const refuse = (request: Record<string, unknown>) => (admit({ ...base, request: { ...base.request, ...request } }, validators).body as { response: AdmissionResponse }).response;
    expect(refuse({ kind: { group: "apps", version: "v1", kind: "Deployment" } }).status!.details!.causes[0]).toMatchObject({ field: "/request/kind", message: expect.stringContaining("validates graylane.io/v1alpha1 LaneGroup and Release") });
    expect(refuse({ operation: "PATCH" }).status!.details!.causes[0]).toMatchObject({ field: "/request/operation" });
    expect(refuse({ object: undefined }).status!.details!.causes[0]).toMatchObject({ field: "/request/object", message: "is required for CREATE (an object)" });
    expect(refuse({ object: undefined }).uid).toBe(base.request.uid);
  });

  it("denial() shapes a Kubernetes Status", () => {
    expect(denial("u", "LaneGroup", "g", [{ path: "/spec/a", message: "m" }, { path: "/spec/b", message: "n" }])).toEqual({
      uid: "u", allowed: false,
      status: {
        status: "Failure", code: 422, reason: "Invalid", message: "LaneGroup g: /spec/a: m; /spec/b: n",
        details: { name: "g", group: "graylane.io", kind: "lanegroups", causes: [{ reason: "FieldValueInvalid", field: "/spec/a", message: "m" }, { reason: "FieldValueInvalid", field: "/spec/b", message: "n" }] },
      },
    });
  });
});

describe("the RuleSet's LaneGroup objects (selectLaneGroups)", () => {
  const obj = (name: string, created: string, spec: Record<string, unknown>): KubeObject => ({ ...laneGroup(name, spec), metadata: { name, creationTimestamp: created } });
  const names = (gs: LaneGroup[]) => gs.map((g) => g.name);

  it("maps an object to REST's document and paths", () => {
    expect(modelDocument(laneGroup("g", { services: [] }))).toEqual({ ok: true, document: { services: [], name: "g" } });
    expect(objectPath("/lanes/0/weight")).toBe("/spec/lanes/0/weight");
    expect(objectPath("/name")).toBe("/metadata/name");
    expect(objectPath("/names")).toBe("/spec/names");
    expect(objectPath("")).toBe("/spec");
  });

  it("keeps every valid group, parsed with defaults", () => {
    const s = selectLaneGroups([obj("b", "2026-01-02T00:00:00Z", { services: [{ name: "sb" }] }), obj("a", "2026-01-01T00:00:00Z", { services: [{ name: "sa" }] })]);
    expect(names(s.valid)).toEqual(["a", "b"]);
    expect(s.valid[0]).toMatchObject({ baseLane: "base", stickySalt: "a", services: [{ name: "sa", hosts: ["sa"], paths: [] }] });
    expect(s.rejected).toEqual([]);
  });

  it("leaves out an invalid object with its errors at /spec paths, and keeps the others", () => {
    const s = selectLaneGroups([
      obj("good", "2026-01-02T00:00:00Z", { services: [{ name: "s1" }] }),
      obj("bad", "2026-01-01T00:00:00Z", { services: [{ name: "s2" }], lanes: [{ name: "c", weight: 150, services: ["zz"] }] }),
    ]);
    expect(names(s.valid)).toEqual(["good"]);
    expect(s.rejected).toEqual([{
      name: "bad", reason: "Invalid",
      errors: [{ path: "/spec/lanes/0/weight", message: "must be from 0 to 100" }, { path: "/spec/lanes/0/services/0", message: "unknown service zz" }],
      message: "/spec/lanes/0/weight: must be from 0 to 100; /spec/lanes/0/services/0: unknown service zz",
    }]);
  });

  it("of two groups claiming one service, the older wins whatever the order given", () => {
    const older = obj("zeta", "2026-01-01T00:00:00Z", { services: [{ name: "shared" }] });
    const newer = obj("alpha", "2026-01-01T00:00:05Z", { services: [{ name: "own" }, { name: "shared" }] });
    for (const list of [[older, newer], [newer, older]]) {
      const s = selectLaneGroups(list);
      expect(names(s.valid)).toEqual(["zeta"]);
      expect(s.rejected).toEqual([{ name: "alpha", reason: "Conflict", errors: [
        { path: "/spec/services/1/name", message: "service shared already belongs to lane group zeta" },
        { path: "/spec/services/1/hosts/0", message: "host shared already routes to zeta/shared" },
      ], message: expect.any(String) }]);
    }
  });

  it("an invalid older group claims nothing; a rejected group takes no service from later ones", () => {
    const s = selectLaneGroups([
      obj("first", "2026-01-01T00:00:00Z", { services: [{ name: "shared" }], lanes: [{ name: "base" }] }), // invalid on its own
      obj("second", "2026-01-02T00:00:00Z", { services: [{ name: "shared" }, { name: "x" }] }),
      obj("third", "2026-01-03T00:00:00Z", { services: [{ name: "x" }] }), // conflicts with second
      obj("fourth", "2026-01-04T00:00:00Z", { services: [{ name: "y", hosts: ["x"] }] }), // second's default host
    ]);
    expect(names(s.valid)).toEqual(["second"]);
    expect(s.rejected.map((r) => [r.name, r.reason])).toEqual([["first", "Invalid"], ["fourth", "Conflict"], ["third", "Conflict"]]);
    expect(s.rejected.find((r) => r.name === "fourth")!.errors).toEqual([{ path: "/spec/services/0/hosts/0", message: "host x already routes to second/x" }]);
  });

  it("same creation second: the name decides; a missing timestamp counts as newest", () => {
    const t = "2026-01-01T00:00:00Z";
    expect(names(selectLaneGroups([obj("b", t, { services: [{ name: "s" }] }), obj("a", t, { services: [{ name: "s" }] })]).valid)).toEqual(["a"]);
    const undated = { ...laneGroup("a", { services: [{ name: "s" }] }) };
    expect(names(selectLaneGroups([undated, obj("b", t, { services: [{ name: "s" }] })]).valid)).toEqual(["b"]);
  });

  it("a spec with a name, or no object at all, is Invalid", () => {
    const s = selectLaneGroups([{ ...laneGroup("a", {}), spec: "x" }, laneGroup("b", { name: "b", services: [{ name: "s" }] })]);
    expect(s.valid).toEqual([]);
    expect(s.rejected.map((r) => r.errors[0]!.path)).toEqual(["/spec", "/spec/name"]);
  });
});

describe("the ValidatingWebhookConfiguration (api/webhook-config.ts)", () => {
  it("deploy/webhook.yaml is its rendering for the shipped Service", () => {
    expect(readFileSync("deploy/webhook.yaml", "utf8"), "deploy/webhook.yaml is stale: run make webhook-config").toBe(webhookYaml());
    const [service, config] = parseAllDocuments(readFileSync("deploy/webhook.yaml", "utf8")).map((d) => d.toJS());
    expect(service).toMatchObject({ kind: "Service", metadata: { name: "graylane-webhook", namespace: "graylane-system" }, spec: { ports: [{ port: 443, targetPort: DEFAULT_WEBHOOK_PORT }] } });
    expect(config.webhooks[0]).toMatchObject({
      name: "validate.graylane.io", failurePolicy: "Fail", sideEffects: "None", admissionReviewVersions: ["v1"],
      clientConfig: { service: { namespace: "graylane-system", name: "graylane-webhook", path: "/validate", port: 443 }, caBundle: "" },
      rules: [{ apiGroups: ["graylane.io"], apiVersions: ["v1alpha1"], operations: ["CREATE", "UPDATE"], resources: ["lanegroups", "releases"], scope: "Cluster" }],
    });
    // The Service selects the control plane's pods (deploy/control-plane.yaml), in its namespace.
    const deployment = parseAllDocuments(readFileSync("deploy/control-plane.yaml", "utf8")).map((d) => d.toJS()).find((o) => o.kind === "Deployment");
    expect(service.metadata.namespace).toBe(deployment.metadata.namespace);
    for (const [k, v] of Object.entries(service.spec.selector)) expect(deployment.spec.template.metadata.labels[k], k).toBe(v);
  });

  it("renders a caBundle, for a URL or another Service", () => {
    const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    const byUrl = webhookConfiguration({ caPem: pem, target: { url: "https://127.0.0.1:9443/" } });
    expect(byUrl.webhooks[0]!.clientConfig).toEqual({ url: "https://127.0.0.1:9443/validate", caBundle: Buffer.from(pem).toString("base64") });
    const bySvc = webhookConfiguration({ caPem: Buffer.from(pem), target: { service: { namespace: "ops", name: "gl" } } });
    expect(bySvc.webhooks[0]!.clientConfig).toEqual({ service: { namespace: "ops", name: "gl", path: "/validate", port: 443 }, caBundle: Buffer.from(pem).toString("base64") });
    // Another Service: no shipped Service in front of it, and no note about an empty caBundle.
    const yaml = webhookYaml({ caPem: pem, target: { service: { namespace: "ops", name: "gl", port: 8443 } } });
    expect(parseAllDocuments(yaml).map((d) => d.toJS().kind)).toEqual(["ValidatingWebhookConfiguration"]);
    expect(yaml).not.toContain("caBundle is empty");
  });
});

describe("admission: the user of an admitted change", () => {
  it("tells the store who made each admitted LaneGroup change (not dry runs, refusals or Releases)", () => {
    const told: Array<[string, unknown, string]> = [];
    const v = restValidators({ ...store, admitted: (name, spec, user) => void told.push([name, spec, user]) }, engine);
    const spec = { services: [{ name: "told-svc" }] };
    const withUser = (r: ReturnType<typeof reviewOf>, extra: Record<string, unknown> = {}) => ({ ...r, request: { ...r.request, userInfo: { username: "alice" }, ...extra } });
    expect((admit(withUser(reviewOf(laneGroup("told", spec))), v).body as { response: AdmissionResponse }).response.allowed).toBe(true);
    expect(told).toEqual([["told", spec, "alice"]]);
    admit(withUser(reviewOf(laneGroup("told", spec)), { dryRun: true }), v);
    admit(withUser(reviewOf(laneGroup("told", { services: [] }))), v);
    admit(withUser(reviewOf(release("r1", { group: "mock", lane: "canary" }), { kind: "Release" })), v);
    expect(told).toHaveLength(1);
    // Without a store that records actors, nothing is told.
    expect(restValidators(store, engine).admitted).toBeUndefined();
  });
});
