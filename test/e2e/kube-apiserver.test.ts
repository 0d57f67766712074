// The Kubernetes e2e harness (test/support/kube.ts) against real behaviour: a real kube-apiserver
// (make kube-apiserver) on a real etcd, with RBAC, token authentication, CRDs, server-side apply
// and status subresources. Nothing is skipped: without the binary, startKube fails naming
// `make kube-apiserver`.
//
// There is no kube-controller-manager, scheduler or kubelet here: nothing turns a Deployment into
// ReplicaSets and Pods or reports it available, so the test writes Deployment status by hand,
// through the status subresource, where those would.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KUBE_VERSION, startKube, type RunningKube } from "../support/kube.js";
import { untilOk as until } from "../support/wait.js";

let kube: RunningKube;
const ns = "graylane-smoke";

beforeAll(async () => { kube = await startKube(); });
afterAll(async () => { await kube?.stop(); });


describe("kube-apiserver harness", () => {
  it(`is kube-apiserver ${KUBE_VERSION}, serving TLS with its own CA`, async () => {
    const v = await kube.request("GET", "/version");
    expect(v.status).toBe(200);
    expect(v.body.gitVersion).toBe(KUBE_VERSION);
    expect(kube.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it("authenticates by the token file and authorizes by RBAC", async () => {
    expect((await kube.request("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } })).status).toBe(201);
    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "probe" }, data: { hello: "lanes" } };
    expect((await kube.request("POST", `/api/v1/namespaces/${ns}/configmaps`, cm)).status).toBe(201);
    const read = await kube.request("GET", `/api/v1/namespaces/${ns}/configmaps/probe`);
    expect(read.status).toBe(200);
    expect(read.body.data).toEqual({ hello: "lanes" });

    // The second user is authenticated (discovery is open to every authenticated user) but has no
    // binding: RBAC refuses the same create.
    expect((await kube.request("GET", "/apis", undefined, { token: kube.userToken })).status).toBe(200);
    const denied = await kube.request("POST", `/api/v1/namespaces/${ns}/configmaps`, { ...cm, metadata: { name: "probe2" } }, { token: kube.userToken });
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ kind: "Status", reason: "Forbidden" });
    expect(denied.body.message).toContain(`User "graylane-user" cannot create resource "configmaps" in API group "" in the namespace "${ns}"`);
    // An unknown token is not a user at all.
    expect((await kube.request("GET", `/api/v1/namespaces/${ns}/configmaps`, undefined, { token: "not-a-token" })).status).toBe(401);
  });

  it("serves a CustomResourceDefinition once Established, and enforces its schema", async () => {
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition",
      metadata: { name: "probes.test.graylane.io" },
      spec: {
        group: "test.graylane.io", scope: "Cluster",
        names: { plural: "probes", singular: "probe", kind: "Probe" },
        versions: [{
          name: "v1alpha1", served: true, storage: true,
          subresources: { status: {} },
          schema: { openAPIV3Schema: { type: "object", properties: {
            spec: { type: "object", properties: { message: { type: "string" }, count: { type: "integer", minimum: 0 } } },
            status: { type: "object", properties: { seen: { type: "boolean" } } },
          } } },
        }],
      },
    };
    expect((await kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status).toBe(201);
    await until("probes.test.graylane.io Established",
      () => kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/probes.test.graylane.io"),
      (r) => (r.body?.status?.conditions ?? []).some((c: { type: string; status: string }) => c.type === "Established" && c.status === "True"));

    const probe = { apiVersion: "test.graylane.io/v1alpha1", kind: "Probe", metadata: { name: "first" }, spec: { message: "hello", count: 3 } };
    const created = await until("create a Probe", () => kube.request("POST", "/apis/test.graylane.io/v1alpha1/probes", probe), (r) => r.status !== 404);
    expect(created.status).toBe(201);
    const read = await kube.request("GET", "/apis/test.graylane.io/v1alpha1/probes/first");
    expect(read.status).toBe(200);
    expect(read.body.spec).toEqual({ message: "hello", count: 3 });
    expect(read.body.metadata.namespace).toBeUndefined(); // cluster-scoped

    const bad = await kube.request("POST", "/apis/test.graylane.io/v1alpha1/probes", { ...probe, metadata: { name: "bad" }, spec: { count: -1 } });
    expect(bad.status).toBe(422);
    expect(bad.body.message).toContain("spec.count");
  });

  it("applies a Deployment (server-side apply) and takes its status by hand through the status subresource", async () => {
    const deployment = {
      apiVersion: "apps/v1", kind: "Deployment",
      metadata: { name: "mocka-v1", namespace: ns, labels: { app: "mocka" } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "mocka", version: "v1" } },
        template: { metadata: { labels: { app: "mocka", version: "v1" } }, spec: { containers: [{ name: "mocka", image: "mocka:v1" }] } },
      },
    };
    const path = `/apis/apps/v1/namespaces/${ns}/deployments/mocka-v1`;
    const applied = await kube.request("PATCH", `${path}?fieldManager=graylane-e2e`, deployment, { contentType: "application/apply-patch+yaml" });
    expect(applied.status).toBe(201);
    expect(applied.body.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: "graylane-e2e", operation: "Apply" }));

    // No controller-manager: nobody observes the Deployment, so its status stays empty...
    expect((await kube.request("GET", path)).body.status?.availableReplicas).toBeUndefined();
    // ...until the test writes what the deployment controller and kubelet would have.
    const status = {
      observedGeneration: applied.body.metadata.generation, replicas: 1, updatedReplicas: 1, readyReplicas: 1, availableReplicas: 1,
      conditions: [{ type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "set by the test", lastUpdateTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"), lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z") }],
    };
    const patched = await kube.request("PATCH", `${path}/status`, { status }, { contentType: "application/merge-patch+json" });
    expect(patched.status).toBe(200);
    // The main resource ignores status changes (that is what the subresource is for).
    await kube.request("PATCH", path, { status: { availableReplicas: 7 } }, { contentType: "application/merge-patch+json" });
    const read = await kube.request("GET", path);
    expect(read.body.status).toMatchObject({ replicas: 1, availableReplicas: 1, observedGeneration: read.body.metadata.generation });
    expect(read.body.status.conditions).toContainEqual(expect.objectContaining({ type: "Available", status: "True" }));
  });
});
