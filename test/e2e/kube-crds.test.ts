// deploy/crds/*.yaml (generated from the zod models) against the real kube-apiserver: the API server
// accepts them as structural schemas, serves cluster-scoped LaneGroups and Releases, enforces the
// model's types and bounds (422 naming the field), keeps unknown spec fields for the model and the
// webhook to name, prints the columns, and writes status only through the status subresource.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubernetesStore } from "../../control-plane/src/store/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { startKube, writeKubeconfig, type RunningKube } from "../support/kube.js";
import { untilOk as until } from "../support/wait.js";

let kube: RunningKube;
const demo = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
const { name: _name, ...demoSpec } = demo;
const LG = "/apis/graylane.io/v1alpha1/lanegroups";

beforeAll(async () => { kube = await startKube(); });
afterAll(async () => { await kube?.stop(); });


describe("deploy/crds on kube-apiserver", () => {
  it("without them, --store kubernetes stops and says to install them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "graylane-nocrd-"));
    try {
      const kubeconfig = join(dir, "kubeconfig");
      writeKubeconfig(kube, kubeconfig);
      await expect(KubernetesStore.open({ kubeconfig })).rejects.toThrow(/--store kubernetes: https:\/\/127\.0\.0\.1:\d+: .*\(are the CRDs installed\? kubectl apply -f deploy\/crds\/\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("installs every CRD (structural, Established)", async () => {
    const files = readdirSync("deploy/crds").filter((f) => f.endsWith(".yaml")).sort();
    expect(files).toEqual(["lanegrouprevisions.graylane.io.yaml", "lanegroups.graylane.io.yaml", "releases.graylane.io.yaml"]);
    for (const f of files) {
      const crd = parse(readFileSync(`deploy/crds/${f}`, "utf8"));
      const res = await kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const ok = await until(`${crd.metadata.name} Established`,
        () => kube.request("GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`),
        (r) => (r.body?.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Established" && c.status === "True"));
      // NonStructuralSchema would be a condition here
      expect(ok.body.status.conditions.filter((c: { type: string }) => c.type === "NonStructuralSchema")).toEqual([]);
    }
  });

  it("serves the demo group as a cluster-scoped LaneGroup and prints its columns", async () => {
    const body = { apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: "mock" }, spec: demoSpec };
    const created = await until("create LaneGroup", () => kube.request("POST", LG, body), (r) => r.status !== 404);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.metadata.namespace).toBeUndefined();
    expect(created.body.spec).toEqual(demoSpec); // nothing defaulted or pruned by the API server

    const t = await fetchTable(`${LG}/mock`);
    expect(t.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(["Name", "Services", "Lanes", "Revision", "Synced", "Ready", "Discovered", "Age"]);
    expect(t.rows[0].cells[0]).toBe("mock"); // the rest is status, which the control plane writes
  });

  it("enforces the model's types and bounds, naming the field", async () => {
    const bad = (spec: unknown, name = "bad") => kube.request("POST", LG, { apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name }, spec });
    const weight = await bad({ ...demoSpec, lanes: [{ ...demoSpec.lanes[0], weight: 101 }] });
    expect(weight.status).toBe(422);
    expect(weight.body.message).toContain("spec.lanes[0].weight");
    const none = await bad({ ...demoSpec, services: [] });
    expect(none.status).toBe(422);
    expect(none.body.message).toContain("spec.services");
    const header = await bad({ ...demoSpec, laneHeader: "bad header" });
    expect(header.status).toBe(422);
    expect(header.body.message).toContain("spec.laneHeader");
    const lanes = await bad({ ...demoSpec, lanes: Array.from({ length: 65 }, (_, i) => ({ name: `l${i}` })) });
    expect(lanes.status).toBe(422);
    expect(lanes.body.message).toContain("spec.lanes: Too many: 65: must have at most 64 items");
    const name = await bad(demoSpec, "Mock.Group");
    expect(name.status).toBe(422);
    expect(name.body.message).toContain("metadata.name: must be 1-63 lowercase letters");
  });

  it("keeps unknown spec fields, at any depth, for the model and the webhook to name", async () => {
    const spec = { ...demoSpec, color: "blue", services: [{ name: "zed", hostz: ["x"] }], lanes: [] };
    const res = await kube.request("POST", LG, { apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: "unknown-fields" }, spec });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.spec.color).toBe("blue");
    expect(res.body.spec.services[0].hostz).toEqual(["x"]);
  });

  it("writes status through the subresource only", async () => {
    const current = await kube.request("GET", `${LG}/mock`);
     const status = { revision: 7, services: "mocka,mockb,mockc", lanes: "canary", observedGeneration: current.body.metadata.generation, conditions: [{ type: "Synced", status: "True", reason: "AllAcked", lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z") }] };
    await kube.request("PATCH", `${LG}/mock`, { status: { revision: 99 } }, { contentType: "application/merge-patch+json" });
    expect((await kube.request("GET", `${LG}/mock`)).body.status).toBeUndefined();
    const patched = await kube.request("PATCH", `${LG}/mock/status`, { status }, { contentType: "application/merge-patch+json" });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const t = await fetchTable(`${LG}/mock`);
    expect(t.rows[0].cells.slice(0, 5)).toEqual(["mock", "mocka,mockb,mockc", "canary", 7, "True"]);
  });

  it("keeps LaneGroupRevisions immutable", async () => {
    const path = "/apis/graylane.io/v1alpha1/lanegrouprevisions";
    const rev = { apiVersion: "graylane.io/v1alpha1", kind: "LaneGroupRevision", metadata: { name: "rev-000000000001" }, spec: { revision: 1, time: "2025-01-01T00:00:00.000Z", actor: "alice", op: "create", group: "mock", groups: "mock", changes: [] } };
    const created = await kube.request("POST", path, rev);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const edited = await kube.request("PATCH", `${path}/rev-000000000001`, { spec: { actor: "mallory" } }, { contentType: "application/merge-patch+json" });
    expect(edited.status).toBe(422);
    expect(edited.body.message).toContain("a LaneGroupRevision is immutable");
  });

  it("serves Releases with their columns", async () => {
    const rel = { apiVersion: "graylane.io/v1alpha1", kind: "Release", metadata: { name: "r1" }, spec: { group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { pause: {} }] } };
    const created = await kube.request("POST", "/apis/graylane.io/v1alpha1/releases", rel);
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const twoInOne = await kube.request("POST", "/apis/graylane.io/v1alpha1/releases", { ...rel, metadata: { name: "r2" }, spec: { ...rel.spec, steps: [{ setWeight: 10, pause: {} }] } });
    expect(twoInOne.status).toBe(422);
    expect(twoInOne.body.message).toContain("spec.steps[0]");
    const t = await fetchTable("/apis/graylane.io/v1alpha1/releases/r1");
    expect(t.columnDefinitions.map((c: { name: string }) => c.name)).toEqual(["Name", "Group", "Lane", "Status", "Weight", "Step", "Age"]);
    expect(t.rows[0].cells.slice(0, 3)).toEqual(["r1", "mock", "canary"]);
  });
});

/** GET as a meta.k8s.io Table (what kubectl get prints). */
async function fetchTable(path: string): Promise<any> {
  const { request } = await import("node:https");
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, kube.url), {
      headers: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io", authorization: `Bearer ${kube.adminToken}` }, ca: readFileSync(kube.caFile),
    }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => { try { resolve(JSON.parse(text)); } catch (e) { reject(e); } });
    });
    req.on("error", reject);
    req.end();
  });
}
