// The validating admission webhook against the real kube-apiserver (test/support/kube.ts): the
// control plane serves it over HTTPS with a certificate of a CA made here, registered by the
// ValidatingWebhookConfiguration `graylane webhook manifest --url` prints (clientConfig.url, since
// the API server runs on loopback beside it, and the caBundle of that CA). A LaneGroup or Release
// the API server is asked to create is refused with the messages, at /spec paths, that REST gives
// for the same document on the same control plane; a valid one is created; with the webhook down,
// failurePolicy Fail refuses every create. Then a control plane on `--store kubernetes` takes the
// registration over: its webhook checks against the LaneGroup objects themselves, names the user it
// admitted in the revision the store records, and admits the store's own writes.
//
// The CRDs: deploy/crds (generated from the zod model) when present, else a minimal one written
// here (spec an object keeping unknown fields). The API server checks an object against its CRD's
// schema before any validating webhook sees it, so a bound the schema carries (a weight over 100)
// comes back in the API server's words at its `spec.lanes[0].weight` field; the documents compared
// with REST break rules no CRD schema expresses (cross-field, cross-group, regex, unknown fields),
// which only the webhook answers.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { main } from "../../control-plane/src/cli/main.js";
import type { FieldError } from "../../control-plane/src/model/errors.js";
import { objectPath } from "../../control-plane/src/model/kube.js";
import { startControlPlane, type ControlPlane } from "../../control-plane/src/server/index.js";
import { makeCa } from "../support/certs.js";
import { startKube, writeKubeconfig, type KubeResponse, type RunningKube } from "../support/kube.js";
import { untilOk } from "../support/wait.js";

let kube: RunningKube;
let cp: ControlPlane;
let dir: string;

const API = "/apis/graylane.io/v1alpha1";
const laneGroup = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name }, spec });
const release = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "graylane.io/v1alpha1", kind: "Release", metadata: { name }, spec });
const mock = JSON.parse(readFileSync("test/fixtures/lanegroup-mock.json", "utf8"));

/** The CRDs of deploy/crds, or a minimal pair (cluster-scoped, spec keeping unknown fields, a status subresource). */
function crds(): unknown[] {
  if (existsSync("deploy/crds")) {
    const files = readdirSync("deploy/crds").filter((f) => f.endsWith(".yaml")).sort();
    const objs = files.flatMap((f) => parseAllDocuments(readFileSync(join("deploy/crds", f), "utf8")).map((d) => d.toJS()));
    if (objs.some((o) => o?.kind === "CustomResourceDefinition")) return objs.filter((o) => o?.kind === "CustomResourceDefinition");
  }
  return (["LaneGroup", "Release"] as const).map((kind) => {
    const plural = `${kind.toLowerCase()}s`;
    return {
      apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.graylane.io` },
      spec: {
        group: "graylane.io", scope: "Cluster", names: { plural, singular: kind.toLowerCase(), kind },
        versions: [{
          name: "v1alpha1", served: true, storage: true, subresources: { status: {} },
          schema: { openAPIV3Schema: { type: "object", properties: {
            spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
          } } },
        }],
      },
    };
  });
}


const until = <T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 30_000) => untilOk(what, fn, ok, ms, 200);

async function rest(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(cp.url + path, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

/** The CLI's output, parsed: what `graylane webhook manifest --ca-file ... --url ...` prints. */
async function manifest(url: string): Promise<any[]> {
  let out = "", err = "";
  const code = await main(["webhook", "manifest", "--ca-file", join(dir, "ca.pem"), "--url", url], { out: (s) => { out += s; }, err: (s) => { err += s; }, env: {} });
  expect(err).toBe("");
  expect(code).toBe(0);
  return parseAllDocuments(out).map((d) => d.toJS());
}

/** REST's errors and the API server's refusal agree: each `path: message` at its object path, in the message and the causes. */
function expectSameAsRest(refused: KubeResponse, restErrors: FieldError[]) {
  expect(restErrors.length).toBeGreaterThan(0);
  expect(refused.status, JSON.stringify(refused.body)).toBe(422);
  expect(refused.body).toMatchObject({ kind: "Status", status: "Failure", reason: "Invalid" });
  expect(refused.body.message).toMatch(/^admission webhook "validate\.graylane\.io" denied the request: /);
  for (const e of restErrors) expect(refused.body.message).toContain(`${objectPath(e.path)}: ${e.message}`);
  expect(refused.body.details.causes).toEqual(restErrors.map((e) => ({ reason: "FieldValueInvalid", field: objectPath(e.path), message: e.message })));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "graylane-kube-webhook-"));
  makeCa(dir).leaf("webhook", "/CN=graylane-webhook", "IP:127.0.0.1");
  [kube, cp] = await Promise.all([
    startKube(),
    startControlPlane({ port: 0, grpcPort: 0, store: ":memory:", webhook: { port: 0, cert: readFileSync(join(dir, "webhook.pem")), key: readFileSync(join(dir, "webhook.key")) } }),
  ]);
  for (const crd of crds()) expect((await kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status).toBe(201);
  for (const plural of ["lanegroups", "releases"]) {
    await until(`${plural}.graylane.io Established`, () => kube.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.graylane.io`),
      (r) => (r.body?.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Established" && c.status === "True"));
  }
  await register(cp.webhookUrl!);
}, 150_000);

/** Registers the webhook at `url` (replacing an earlier registration) and waits until the API server calls it. */
async function register(url: string): Promise<void> {
  const [config] = await manifest(url);
  expect(config.webhooks[0].clientConfig.url).toBe(`${url}/validate`);
  await kube.request("DELETE", `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${config.metadata.name}`);
  expect((await kube.request("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", config)).status).toBe(201);
  // The API server takes the configuration up asynchronously: wait until a dry run is refused by it.
  await until("the webhook in force", () => kube.request("POST", `${API}/lanegroups?dryRun=All`, laneGroup("probe", { services: [{ name: "p" }], lanes: [{ name: "base" }] })),
    (r) => r.status === 422 && String(r.body?.message).includes("validate.graylane.io"));
}

let kubeCp: ControlPlane | undefined;

afterAll(async () => {
  await kubeCp?.close();
  await cp?.close();
  await kube?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the admission webhook behind a real kube-apiserver", () => {
  it("creates a valid LaneGroup", async () => {
    const created = await kube.request("POST", `${API}/lanegroups`, laneGroup("shop", { services: [{ name: "cart" }], lanes: [{ name: "canary", services: ["cart"], weight: 10 }] }));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.spec.lanes[0]).toEqual({ name: "canary", services: ["cart"], weight: 10 });
  });

  it("refuses an invalid LaneGroup with every message REST gives for the same document, at /spec paths", async () => {
    const spec = {
      services: [{ name: "a", region: "eu" }, { name: "b" }],
      lanes: [
        { name: "c", weight: 60, services: ["zz"], fallback: "d" },
        { name: "d", weight: 60, fallback: "c", match: [{ uri: { regex: "(" } }] },
        { name: "base" },
      ],
    };
    const byRest = await rest("PUT", "/v1/lanegroups/broken", spec);
    expect(byRest.status).toBe(400);
    expect(byRest.body.errors.length).toBeGreaterThanOrEqual(5);
    const refused = await kube.request("POST", `${API}/lanegroups`, laneGroup("broken", spec));
    expectSameAsRest(refused, byRest.body.errors);
    expect(refused.body.details.causes.map((c: { field: string }) => c.field)).toEqual(expect.arrayContaining(["/spec/services/0/region", "/spec/lanes/0/services/0", "/spec/lanes", "/spec/lanes/2/name"]));
    expect((await kube.request("GET", `${API}/lanegroups/broken`)).status).toBe(404);
  });

  it("a bound the CRD's schema carries (from the same zod model) is refused by the API server itself, before the webhook", async () => {
    const spec = { services: [{ name: "a" }], lanes: [{ name: "c", weight: 150 }] };
    const byRest = await rest("PUT", "/v1/lanegroups/heavy", spec);
    expect(byRest.body.errors).toEqual([{ path: "/lanes/0/weight", message: "must be from 0 to 100" }]);
    const refused = await kube.request("POST", `${API}/lanegroups`, laneGroup("heavy", spec));
    expect(refused.status).toBe(422);
    expect(refused.body.message).not.toContain("denied the request");
    expect(refused.body.details.causes).toContainEqual(expect.objectContaining({ field: "spec.lanes[0].weight" }));
  });

  it("the lane fields of end-to-end lanes and gRPC (isolation, generateTraceId, protocol, a leading (?i)): accepted as written, bad values refused with REST's paths", async () => {
    const good = {
      services: [{ name: "grpc-a", protocol: "grpc" }], isolation: "strict", generateTraceId: false,
      lanes: [{ name: "canary", services: ["grpc-a"], match: [{ headers: { "user-agent": { regex: "(?i).*iphone.*" } } }] }],
    };
    const created = await kube.request("POST", `${API}/lanegroups`, laneGroup("lanes14", good));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.spec).toEqual(good);
    const bad = {
      services: [{ name: "grpc-b", protocol: "h2" }], isolation: "strong",
      lanes: [{ name: "canary", services: ["grpc-b"], match: [{ headers: { "user-agent": { regex: "(?is).*iphone.*" } } }] }],
    };
    const byRest = await rest("PUT", "/v1/lanegroups/lanes14bad", bad);
    expect(byRest.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(["/isolation", "/lanes/0/match/0/headers/user-agent/regex", "/services/0/protocol"]);
    const refused = await kube.request("POST", `${API}/lanegroups`, laneGroup("lanes14bad", bad));
    expect(refused.status).toBe(422);
    // The enums are in the CRD's schema (from zod): the API server refuses them in its own words,
    // before the webhook; the regex flag only the webhook knows, and it names it as REST does.
    expect(refused.body.details.causes).toEqual(expect.arrayContaining([
      expect.objectContaining({ field: "spec.isolation" }), expect.objectContaining({ field: "spec.services[0].protocol" }),
    ]));
    const flagOnly = await kube.request("POST", `${API}/lanegroups`, laneGroup("lanes14bad", { ...bad, services: [{ name: "grpc-b" }], isolation: "strict" }));
    expectSameAsRest(flagOnly, (await rest("PUT", "/v1/lanegroups/lanes14bad", { ...bad, services: [{ name: "grpc-b" }], isolation: "strict" })).body.errors);
    console.log(`kube-webhook: ${refused.body.message}\nkube-webhook: ${flagOnly.body.message}`);
  });

  it("checks a LaneGroup against the other groups: a service another group claims is refused as REST refuses it", async () => {
    expect((await rest("PUT", "/v1/lanegroups/mock", mock)).status).toBe(201);
    const spec = { services: [{ name: "mockb" }, { name: "other", hosts: ["mocka.default.svc.cluster.local"] }] };
    const byRest = await rest("PUT", "/v1/lanegroups/claims", spec);
    expect(byRest.status).toBe(400);
    expect(byRest.body.errors).toEqual([
      { path: "/services/0/name", message: "service mockb already belongs to lane group mock" },
      { path: "/services/0/hosts/0", message: "host mockb already routes to mock/mockb" },
      { path: "/services/1/hosts/0", message: "host mocka.default.svc.cluster.local already routes to mock/mocka" },
    ]);
    expectSameAsRest(await kube.request("POST", `${API}/lanegroups`, laneGroup("claims", spec)), byRest.body.errors);
  });

  it("judges an UPDATE's new spec, and lets a DELETE through", async () => {
    const path = `${API}/lanegroups/shop`;
    const current = (await kube.request("GET", path)).body;
    const spec = { ...current.spec, lanes: [{ name: "canary", services: ["cart"], weight: 10, fallback: "nowhere" }] };
    const byRest = await rest("PUT", "/v1/lanegroups/shop", spec);
    expect(byRest.status).toBe(400);
    expectSameAsRest(await kube.request("PUT", path, { ...current, spec }), byRest.body.errors);
    // A merge patch is an UPDATE too.
    const patched = await kube.request("PATCH", path, { spec: { colour: "red" } }, { contentType: "application/merge-patch+json" });
    expectSameAsRest(patched, [{ path: "/colour", message: "unknown field colour" }]);
    expect((await kube.request("PATCH", path, { metadata: { labels: { team: "shop" } }, spec: { lanes: [{ name: "canary", services: ["cart"], weight: 20 }] } }, { contentType: "application/merge-patch+json" })).status).toBe(200);
    expect((await kube.request("DELETE", path)).status).toBe(200);
  });

  it("validates a Release against its lane group as REST does, and creates a valid one", async () => {
    const spec = { group: "mock", lane: "canary", strategy: "blueGreen", steps: [{ setWeight: 30 }, { setMatch: [{}] }] };
    const byRest = await rest("POST", "/v1/releases", { name: "r1", ...spec });
    expect(byRest.status).toBe(400);
    expectSameAsRest(await kube.request("POST", `${API}/releases`, release("r1", spec)), byRest.body.errors);
    const noLane = { group: "mock", lane: "blue" };
    const restNoLane = await rest("POST", "/v1/releases", { name: "r1", ...noLane });
    expect(restNoLane.body.errors).toEqual([{ path: "/lane", message: expect.stringContaining("lane group mock has no lane blue") }]);
    expectSameAsRest(await kube.request("POST", `${API}/releases`, release("r1", noLane)), restNoLane.body.errors);
    const created = await kube.request("POST", `${API}/releases`, release("r1", { group: "mock", lane: "canary" }));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
  });

  it("with the webhook down, failurePolicy Fail refuses every create (deletes still go through)", async () => {
    const kept = await kube.request("POST", `${API}/lanegroups`, laneGroup("kept", { services: [{ name: "k" }] }));
    expect(kept.status).toBe(201);
    await cp.close();
    const refused = await kube.request("POST", `${API}/lanegroups`, laneGroup("while-down", { services: [{ name: "fine" }] }));
    expect(refused.status).toBe(500);
    expect(refused.body).toMatchObject({ kind: "Status", status: "Failure", reason: "InternalError" });
    expect(refused.body.message).toContain('failed calling webhook "validate.graylane.io"');
    expect((await kube.request("GET", `${API}/lanegroups/while-down`)).status).toBe(404);
    expect((await kube.request("POST", `${API}/releases`, release("r2", { group: "mock", lane: "canary" }))).status).toBe(500);
    expect((await kube.request("DELETE", `${API}/lanegroups/kept`)).status).toBe(200);
    expect((await kube.request("DELETE", `${API}/releases/r1`)).status).toBe(200);
  });
});

describe("the admission webhook of a control plane on --store kubernetes", () => {
  const webhookTls = () => ({ cert: readFileSync(join(dir, "webhook.pem")), key: readFileSync(join(dir, "webhook.key")) });
  let url: string;

  beforeAll(async () => {
    const kubeconfig = join(dir, "kubeconfig");
    writeKubeconfig(kube, kubeconfig);
    kubeCp = await startControlPlane({ port: 0, grpcPort: 0, store: `kubernetes:${kubeconfig}`, webhook: { port: 0, ...webhookTls() } });
    url = kubeCp.url;
    await register(kubeCp.webhookUrl!);
  }, 120_000);

  const restOf = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: await res.json() as any };
  };

  it("checks a LaneGroup against the LaneGroup objects, and the revision of an admitted change names the user the webhook saw", async () => {
    const created = await kube.request("POST", `${API}/lanegroups`, laneGroup("alpha", { services: [{ name: "svc-a" }] }));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    await until("alpha in the store", () => restOf("GET", "/v1/lanegroups/alpha"), (r) => r.status === 200);
    const revisions = await until("alpha's revision", () => restOf("GET", "/v1/revisions?group=alpha"), (r) => r.body.revisions?.length > 0);
    expect(revisions.body.revisions[0]).toMatchObject({ op: "create", actor: "admin" });

    const spec = { services: [{ name: "svc-a" }] };
    const byRest = await restOf("PUT", "/v1/lanegroups/beta", spec);
    expect(byRest.body.errors).toEqual([
      { path: "/services/0/name", message: "service svc-a already belongs to lane group alpha" },
      { path: "/services/0/hosts/0", message: "host svc-a already routes to alpha/svc-a" },
    ]);
    expectSameAsRest(await kube.request("POST", `${API}/lanegroups`, laneGroup("beta", spec)), byRest.body.errors);
  });

  it("admits the store's own writes: a REST PUT lands as a LaneGroup object through the webhook", async () => {
    const put = await restOf("PUT", "/v1/lanegroups/gamma", { services: [{ name: "svc-g" }] });
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    expect((await kube.request("GET", `${API}/lanegroups/gamma`)).body.spec).toMatchObject({ services: [{ name: "svc-g" }] });
  });
});
