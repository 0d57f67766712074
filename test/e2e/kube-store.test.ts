// `--store kubernetes` against the real kube-apiserver (test/support/kube.ts) with the CRDs of
// deploy/crds installed: the shared Store contract (test/support/store-conformance.ts, which SQLite
// and etcd run too: revisions, ETags, If-Match, validation before writing, onChange, the audit
// trail, rollback, a reopened store serving the same state, two stores serializing writes), and
// what a cluster adds: a REST PUT is a LaneGroup object; a LaneGroup written
// through the API server as a kubectl user would (the client library, fieldManager like kubectl's)
// becomes a revision with that actor, reaches onChange, GET /v1/lanegroups, /v1/revisions and the
// RuleSet pushed to a gRPC subscriber; changes made while no control plane watched are recorded at
// start; a spec the model refuses is not recorded and is reported Ready=False; old revisions are
// pruned. No kubectl binary: every kubectl-style write goes through @kubernetes/client-node.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { RuleRequestSchema, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { startControlPlane } from "../../control-plane/src/server/index.js";
import { KubernetesStore, openStore, SqliteStore } from "../../control-plane/src/store/index.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { mockGroup } from "../support/filter.js";
import { storeConformance } from "../support/store-conformance.js";
import { runCli } from "../support/cli.js";
import { ackingSubscriber } from "../support/subscriber.js";
import { startKube, writeKubeconfig, type RunningKube } from "../support/kube.js";
import { until, untilOk } from "../support/wait.js";

let kube: RunningKube;
let dir: string;
let kubeconfig: string;
let kubectl: CustomObjectsApi; // what a kubectl user does, through the client library
const open: KubernetesStore[] = [];
let tick = 0;
const clock = () => new Date(Date.UTC(2025, 0, 1, 12, 0, tick++));
const alice = { actor: "alice" };
const other = (extra: Record<string, unknown> = {}) => ({ name: "shop", services: [{ name: "web" }, { name: "api" }], ...extra });
const G = { group: "graylane.io", version: "v1alpha1" };


async function store(opts: { retain?: number } = {}): Promise<KubernetesStore> {
  const s = await KubernetesStore.open({ kubeconfig, now: clock, ...opts });
  open.push(s);
  return s;
}

/** Every LaneGroup and LaneGroupRevision gone, every store closed: the next store starts at revision 0. */
async function reset(): Promise<void> {
  for (const s of open.splice(0)) await s.close();
  for (const plural of ["lanegroups", "lanegrouprevisions"]) {
    expect((await kube.request("DELETE", `/apis/graylane.io/v1alpha1/${plural}`)).status).toBe(200);
    await until(`${plural} gone`, async () => (await kube.request("GET", `/apis/graylane.io/v1alpha1/${plural}`)).body.items.length === 0);
  }
  tick = 0;
}

/** What kubectl apply/edit does to a LaneGroup: create it, or replace its spec (read, modify, write; again on 409). */
async function kubectlApply(doc: Record<string, unknown>, fieldManager = "kubectl-client-side-apply"): Promise<any> {
  const { name, ...spec } = doc;
  const body = { apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: name as string }, spec };
  for (let attempt = 0; ; attempt++) {
    try {
      const had = await kubectl.getClusterCustomObject({ ...G, plural: "lanegroups", name: name as string }) as any;
      return await kubectl.replaceClusterCustomObject({ ...G, plural: "lanegroups", name: name as string, fieldManager, body: { ...had, spec, metadata: { ...had.metadata, managedFields: undefined } } });
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code === 409 && attempt < 10) continue;
      if (code !== 404) throw e;
      return await kubectl.createClusterCustomObject({ ...G, plural: "lanegroups", fieldManager, body });
    }
  }
}

beforeAll(async () => {
  kube = await startKube();
  for (const f of readdirSync("deploy/crds").filter((n) => n.endsWith(".yaml"))) {
    const crd = parse(readFileSync(`deploy/crds/${f}`, "utf8"));
    expect((await kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)).status).toBe(201);
    await until(`${crd.metadata.name} served`, async () => (await kube.request("GET", `/apis/graylane.io/v1alpha1/${crd.spec.names.plural}`)).status === 200);
  }
  dir = mkdtempSync(join(tmpdir(), "graylane-kstore-"));
  kubeconfig = join(dir, "kubeconfig");
  writeKubeconfig(kube, kubeconfig);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  kubectl = kc.makeApiClient(CustomObjectsApi);
});
afterAll(async () => {
  for (const s of open.splice(0)) await s.close();
  await kube?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

storeConformance("KubernetesStore", {
  reset,
  open: ({ now }) => KubernetesStore.open({ kubeconfig, now }),
  objects: async () => (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups")).body.items.map((i: any) => i.metadata.name),
});

describe("KubernetesStore: where it keeps things", () => {
  it("every revision is a LaneGroupRevision object rev-<12 digits> with actor and op", async () => {
    await reset();
    const s = await store();
    await s.put(mockGroup(), { actor: "alice" });
    await s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 12.5 }] }), { actor: "bob" });
    await s.delete("mock", { actor: "carol" });
    await s.put(other(), alice);
    const objs = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegrouprevisions")).body.items;
    expect(objs.map((o: any) => [o.metadata.name, o.spec.actor, o.spec.op])).toEqual([
      ["rev-000000000001", "alice", "create"], ["rev-000000000002", "bob", "replace"], ["rev-000000000003", "carol", "delete"], ["rev-000000000004", "alice", "create"],
    ]);
  });

  it("openStore: kubernetes:KUBECONFIG, and a clear error without the CRDs or the file", async () => {
    await reset();
    const s = await openStore(`kubernetes:${kubeconfig}`);
    open.push(s as KubernetesStore);
    expect((await s.put(mockGroup(), alice)).revision).toBe(1);
    await expect(openStore(`kubernetes:${join(dir, "missing")}`)).rejects.toThrow(/cannot load kubeconfig .*missing/);
  });
});

describe("KubernetesStore: LaneGroups written through the API server", () => {
  it("a REST write is a LaneGroup object: spec without name, actor annotation, status with the revision", async () => {
    await reset();
    const s = await store();
    await s.put(mockGroup(), { actor: "alice" });
    const obj = await until("status.revision", async () => { const o = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body; return o.status?.revision === 1 && o; });
    const { name: _n, ...spec } = mockGroup();
    expect(obj.spec).toEqual(spec);
    expect(obj.metadata.annotations["graylane.io/actor"]).toBe("alice");
    expect(obj.status).toMatchObject({ revision: 1, observedGeneration: 1, services: "mocka,mockb,mockc", lanes: "canary" });
  });

  it("kubectl apply / edit / delete become revisions with the field manager as actor, and reach onChange", async () => {
    await reset();
    const s = await store();
    const changes: number[] = [];
    s.onChange((n) => changes.push(n));
    let at = performance.now();
    await kubectlApply(mockGroup());
    await until("create recorded", () => changes.includes(1));
    const createMs = performance.now() - at;
    expect(s.revisions()[0]).toMatchObject({ revision: 1, op: "create", actor: "kubectl-client-side-apply", group: "mock" });
    expect(s.get("mock")?.lanegroup.laneHeader).toBe("x-graylane-lane"); // read through the model: defaults filled

    at = performance.now();
    await kubectlApply(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 30 }] }), "kubectl-edit");
    await until("replace recorded", () => changes.includes(2));
    const replaceMs = performance.now() - at;
    expect(s.revision(2)).toMatchObject({ op: "replace", actor: "kubectl-edit" });
    expect(s.revision(2)!.diff[0].patch).toContainEqual({ op: "replace", path: "/lanes/0/weight", value: 30, old: 0 });

    // a status or label change is no revision
    await kube.request("PATCH", "/apis/graylane.io/v1alpha1/lanegroups/mock", { metadata: { labels: { team: "a" } } }, { contentType: "application/merge-patch+json" });
    // a REST write after the kubectl ones: its ETag is what kubectl's change made
    await expect(s.put(mockGroup(), { actor: "alice", expectedRevision: 1 })).rejects.toThrow(/is at revision 2/);
    expect((await s.put(mockGroup({ traceHeader: "x-b3-traceid" }), { actor: "alice", expectedRevision: 2 })).revision).toBe(3);
    const labels = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body.metadata.labels;
    expect(labels).toEqual({ team: "a" }); // the REST write kept what others put in metadata

    await kubectl.deleteClusterCustomObject({ ...G, plural: "lanegroups", name: "mock" });
    await until("delete recorded", () => changes.includes(4));
    expect(s.revision(4)).toMatchObject({ op: "delete", actor: "kubectl", group: "mock" });
    expect(s.get("mock")).toBeUndefined();
    expect(changes).toEqual([1, 2, 3, 4]);
    console.log(`kubernetes store: kubectl create → onChange ${createMs.toFixed(1)} ms, kubectl replace → onChange ${replaceMs.toFixed(1)} ms`);
  });

  it("the user the admission webhook saw is the actor of the change it admitted", async () => {
    await reset();
    const s = await store();
    const { name: _n, ...spec } = mockGroup({ traceHeader: "x-b3-traceid" });
    s.admitted("mock", spec, "jane@example.com"); // as the webhook does on AdmissionReview
    await kubectlApply(mockGroup({ traceHeader: "x-b3-traceid" }));
    await until("recorded", () => s.current().revision === 1);
    expect(s.revisions()[0].actor).toBe("jane@example.com");
    // a hint for other content does not name the next change
    s.admitted("mock", { ...spec, traceHeader: "other" }, "mallory");
    await kubectlApply(mockGroup());
    await until("recorded", () => s.current().revision === 2);
    expect(s.revisions()[0].actor).toBe("kubectl-client-side-apply");
  });

  it("a REST write never overwrites a kubectl change it has not recorded yet", async () => {
    await reset();
    const s = await store();
    await s.put(mockGroup(), alice);
    // kubectl and REST race: whichever way the watch and the write interleave, both are revisions
    const [, put] = await Promise.all([
      kubectlApply(mockGroup({ traceHeader: "from-kubectl" })),
      s.put(mockGroup({ traceHeader: "from-rest" }), { actor: "alice" }),
    ]);
    await until("both recorded", () => s.current().revision === 3);
    const log = s.revisions().map((r) => r.actor);
    expect(log.sort()).toEqual(["alice", "alice", "kubectl-client-side-apply"]);
    const last = s.revision(3)!;
    const obj = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body;
    expect(obj.spec.traceHeader).toBe(last.lanegroups[0].traceHeader); // the store and the object agree
    expect(put.revision).toBeGreaterThan(1);
  });

  it("a spec the model refuses is not recorded and is reported Ready=False; the last good content stays", async () => {
    await reset();
    const s = await store();
    await s.put(mockGroup(), alice);
    await kubectlApply(mockGroup({ lanes: [{ name: "canary", services: ["nope"] }], color: "blue" }));
    const obj = await until("Ready=False", async () => {
      const o = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body;
      return o.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "False") && o;
    });
    const ready = obj.status.conditions.find((c: any) => c.type === "Ready");
    expect(ready.message).toContain("/spec/color: unknown field color");
    expect(ready.message).toContain("/spec/lanes/0/services/0: unknown service nope");
    expect(s.current().revision).toBe(1);
    expect(s.get("mock")?.lanegroup.lanes[0].services).toEqual(["mocka"]);
    // a fixed spec is recorded, and Ready turns True
    await kubectlApply(mockGroup({ traceHeader: "fixed" }));
    await until("recorded", () => s.current().revision === 2);
    const fixed = await until("Ready=True", async () => {
      const o = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body;
      return o.status?.conditions?.some((c: any) => c.type === "Ready" && c.status === "True") && o;
    });
    expect(fixed.status).toMatchObject({ revision: 2, observedGeneration: fixed.metadata.generation });
    // a REST write works on it as on any other
    expect((await s.put(mockGroup(), alice)).revision).toBe(3);
  });

  it("changes made while no control plane watched are recorded at start", async () => {
    await reset();
    const s = await store();
    await s.put(mockGroup(), alice);
    await s.put(other(), alice);
    await s.close();
    await kubectlApply(mockGroup({ traceHeader: "x-b3-traceid" }), "kubectl-edit");
    await kubectl.deleteClusterCustomObject({ ...G, plural: "lanegroups", name: "shop" });
    await kubectlApply({ name: "fresh", services: [{ name: "f" }] }, "argocd-controller");
    // a control plane that stopped between writing the object and recording its revision
    await kubectl.createClusterCustomObject({ ...G, plural: "lanegroups", fieldManager: "graylane", body: {
      apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: "crashed", annotations: { "graylane.io/actor": "erin" } }, spec: { services: [{ name: "c" }] },
    } });
    const s2 = await store();
    expect(s2.revisions().map((r) => [r.revision, r.op, r.group, r.actor])).toEqual([
      // in name order: when each happened is not known
      [6, "delete", "shop", "kubectl"], [5, "replace", "mock", "kubectl-edit"], [4, "create", "fresh", "argocd-controller"], [3, "create", "crashed", "erin"],
      [2, "create", "shop", "alice"], [1, "create", "mock", "alice"],
    ]);
    expect(s2.get("mock")?.lanegroup.traceHeader).toBe("x-b3-traceid");
  });

  it("keeps only the last `retain` revisions; a group untouched since keeps its ETag across a restart", async () => {
    await reset();
    const s = await store({ retain: 3 });
    await s.put(other(), alice); // 1
    for (let i = 0; i < 5; i++) await s.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: i }] }), alice); // 2..6
    await until("pruned", async () => (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegrouprevisions")).body.items.length === 3);
    expect(s.revisions().map((r) => r.revision)).toEqual([6, 5, 4]);
    expect(s.revision(2)).toBeUndefined();
    await expect(s.rollback(2, alice)).rejects.toThrow(/only revisions from 4 are kept/);
    expect(s.revision(4)!.lanegroups.map((g) => g.name)).toEqual(["mock", "shop"]);
    await s.close();
    const s2 = await store({ retain: 3 });
    expect(s2.list().map((g) => [g.name, g.revision])).toEqual([["mock", 6], ["shop", 1]]);
    expect(s2.revisions().map((r) => r.revision)).toEqual([6, 5, 4]);
    expect((await s2.put(other({ traceHeader: "t" }), { actor: "x", expectedRevision: 1 })).revision).toBe(7);
  });
});

describe("KubernetesStore: a damaged log", () => {
  it("a revision deleted by hand cuts the log there: what precedes it counts as pruned, ETags stay", async () => {
    await reset();
    const s = await store();
    await s.put(other(), alice); // 1
    await s.put(mockGroup(), alice); // 2
    await s.put(mockGroup({ traceHeader: "t3" }), alice); // 3
    await s.put(mockGroup({ traceHeader: "t4" }), alice); // 4
    await until("status.revision of shop", async () => (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/shop")).body.status?.revision === 1);
    await s.close();
    expect((await kube.request("DELETE", "/apis/graylane.io/v1alpha1/lanegrouprevisions/rev-000000000002")).status).toBe(200);
    const err = console.error;
    console.error = () => {};
    let s2: KubernetesStore;
    try { s2 = await store(); } finally { console.error = err; }
    expect(s2.revisions().map((r) => r.revision)).toEqual([4, 3]);
    expect(s2.list().map((g) => [g.name, g.revision])).toEqual([["mock", 4], ["shop", 1]]);
    expect((await s2.put(mockGroup(), { actor: "x", expectedRevision: 4 })).revision).toBe(5);
  });
});

describe("KubernetesStore: old bodies", () => {
  it("revisions and objects written before a default existed are read with today's defaults", async () => {
    await reset();
    // as an older Graylane wrote them: no traceHeader, routeHeader, overrideTrust, ... in the bodies
    const old = { name: "legacy", services: [{ name: "old", hosts: ["old"], paths: [] }], baseLane: "base", lanes: [] };
    const created = await kubectl.createClusterCustomObject({ ...G, plural: "lanegroups", fieldManager: "graylane", body: {
      apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: "legacy", annotations: { "graylane.io/actor": "old" } }, spec: { services: [{ name: "old" }] },
    } }) as any;
    await kubectl.createClusterCustomObject({ ...G, plural: "lanegrouprevisions", fieldManager: "graylane", body: {
      apiVersion: "graylane.io/v1alpha1", kind: "LaneGroupRevision", metadata: { name: "rev-000000000001" },
      spec: { revision: 1, time: "2024-01-01T00:00:00.000Z", actor: "old", op: "create", group: "legacy", groups: "legacy",
        changes: [{ group: "legacy", action: "create", beforeRevision: 0, after: old, resourceVersion: created.metadata.resourceVersion, patch: [{ op: "add", path: "", value: old }] }] },
    } });
    const s = await store();
    expect(s.current().revision).toBe(1); // the object is what revision 1 recorded: nothing new
    const g = s.get("legacy")!;
    expect(g).toMatchObject({ revision: 1, lanegroup: { traceHeader: "x-request-id", routeHeader: "x-graylane-route", overrideTrust: "any", stickySalt: "legacy" } });
    expect(s.revision(1)!.lanegroups).toEqual([g.lanegroup]);
  });
});

describe("KubernetesStore: finalizers and RBAC", () => {
  it("a group whose object waits for a finalizer is deleted for Graylane; writing it again waits until it is gone", async () => {
    await reset();
    const s = await store();
    await s.put(mockGroup(), alice);
    const path = "/apis/graylane.io/v1alpha1/lanegroups/mock";
    expect((await kube.request("PATCH", path, { metadata: { finalizers: ["graylane.io/mesh"] } }, { contentType: "application/merge-patch+json" })).status).toBe(200);
    expect((await s.delete("mock", alice)).revision).toBe(2);
    expect((await kube.request("GET", path)).body.metadata.deletionTimestamp).toBeDefined(); // still there, for the controller
    expect(s.get("mock")).toBeUndefined();
    const again = await s.put(mockGroup(), alice).catch((e) => e);
    expect(again.status).toBe(409);
    expect(again.message).toContain("lane group mock is still being deleted (finalizers: graylane.io/mesh)");
    expect((await kube.request("PATCH", path, { metadata: { finalizers: null } }, { contentType: "application/merge-patch+json" })).status).toBe(200);
    await until("gone", async () => (await kube.request("GET", path)).status === 404);
    await until("put again", async () => (await s.put(mockGroup(), alice).catch(() => undefined))?.revision === 3);
    expect(s.revisions().map((r) => r.op)).toEqual(["create", "delete", "create"]);
  });

  it("runs as an identity granted only what docs/kubernetes.md lists", async () => {
    await reset();
    const role = {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name: "graylane-store" },
      rules: [
        { apiGroups: ["graylane.io"], resources: ["lanegroups", "lanegrouprevisions", "releases"], verbs: ["get", "list", "watch", "create", "update", "delete"] },
        { apiGroups: ["graylane.io"], resources: ["lanegroups/status", "releases/status"], verbs: ["patch"] },
      ],
    };
    expect((await kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", role)).status).toBe(201);
    const binding = {
      apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name: "graylane-store" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "graylane-store" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "graylane-user" }],
    };
    const userConfig = join(dir, "user-kubeconfig");
    writeFileSync(userConfig, readFileSync(kubeconfig, "utf8").replace(kube.adminToken, kube.userToken));
    // without the binding: a clear refusal
    await expect(KubernetesStore.open({ kubeconfig: userConfig })).rejects.toThrow(/forbidden.*\(RBAC: the control plane needs lanegroups and lanegrouprevisions\)/i);
    expect((await kube.request("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding)).status).toBe(201);
    const s = await until("RBAC in effect", () => KubernetesStore.open({ kubeconfig: userConfig }).catch(() => undefined));
    open.push(s);
    await s.put(mockGroup(), alice);
    await s.put(mockGroup({ traceHeader: "x" }), alice);
    await kubectlApply(mockGroup({ traceHeader: "y" }));
    await until("kubectl change recorded", () => s.current().revision === 3);
    expect(await s.rollback(1, alice)).toMatchObject({ revision: 4, groups: ["mock"] });
    expect((await s.delete("mock", alice)).revision).toBe(5);
    const obj = await until("status", async () => (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegrouprevisions")).body.items.length === 5);
    expect(obj).toBe(true);
  });
});

describe("graylane serve --store kubernetes", () => {
  it("kubectl apply reaches GET /v1/lanegroups, /v1/revisions and a gRPC subscriber like a REST PUT", async () => {
    await reset();
    const server = await startControlPlane({ port: 0, grpcPort: 0, store: `kubernetes:${kubeconfig}` });
    const client = new GraylaneClient(`127.0.0.1:${server.grpcPort}`);
    const stream = client.streamRules();
    const got: RuleResponse[] = [];
    const gotAt: number[] = [];
    try {
      stream.on("data", (r: RuleResponse) => {
        got.push(r);
        gotAt.push(performance.now());
        stream.write(create(RuleRequestSchema, { instanceId: "mocka-0", versionInfo: r.version, responseNonce: r.nonce }));
      });
      stream.on("error", () => {});
      stream.write(create(RuleRequestSchema, { node: { id: "mocka-0" }, instanceId: "mocka-0" }));
      await until("first RuleSet", () => got.length > 0);
      const call = async (method: string, path: string, body?: unknown) => {
        const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", "x-graylane-actor": "alice" }, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: res.status, etag: res.headers.get("etag"), body: await res.json() as any };
      };
      /** The canary lane's share of sticky buckets (of 10000) in a pushed RuleSet. */
      const weightOf = (r: RuleResponse | undefined) => {
        const lane = r?.ruleSet?.groups.find((g) => g.name === "mock")?.lanes.find((l) => l.name === "canary");
        return lane && lane.bucketEnd - lane.bucketStart;
      };

      const at = performance.now();
      await kubectlApply(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 40 }] }));
      await until("pushed", () => weightOf(got.at(-1)) === 4000);
      const pushMs = performance.now() - at;
      const g = await call("GET", "/v1/lanegroups/mock");
      expect(g.status).toBe(200);
      expect(g.etag).toBe('"1"');
      expect(g.body.lanegroup.lanes[0].weight).toBe(40);
      expect((await call("GET", "/v1/lanegroups")).body.lanegroups.map((x: any) => x.lanegroup.name)).toEqual(["mock"]);
      expect((await call("GET", "/v1/revisions")).body.revisions[0]).toMatchObject({ revision: 1, actor: "kubectl-client-side-apply", op: "create" });

      // REST PUT with the ETag, then the subscriber follows it too
      const put = await fetch(server.url + "/v1/lanegroups/mock", { method: "PUT", headers: { "content-type": "application/json", "if-match": '"1"', "x-graylane-actor": "alice" }, body: JSON.stringify(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 60 }] })) });
      expect(put.status).toBe(200);
      await until("pushed 60", () => weightOf(got.at(-1)) === 6000);
      const stale = await fetch(server.url + "/v1/lanegroups/mock", { method: "PUT", headers: { "content-type": "application/json", "if-match": '"1"' }, body: JSON.stringify(mockGroup()) });
      expect(stale.status).toBe(412);
      const obj = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body;
      expect(obj.spec.lanes[0].weight).toBe(60);
      console.log(`kubernetes store: kubectl apply → RuleSet on a gRPC subscriber ${pushMs.toFixed(1)} ms`);

      // 20 kubectl applies, each timed from the API server's answer to the subscriber holding it
      const times: number[] = [];
      for (let i = 1; i <= 20; i++) {
        const t0 = performance.now();
        await kubectlApply(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: i }] }));
        const t1 = performance.now();
        await until(`weight ${i} pushed`, () => weightOf(got.at(-1)) === i * 100);
        times.push(gotAt[got.findIndex((r) => weightOf(r) === i * 100)]! - t1);
        expect(t1 - t0).toBeLessThan(5000);
      }
      times.sort((a, b) => a - b);
      const p = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)]!.toFixed(1);
      console.log(`kubernetes store: kubectl apply answered → RuleSet on the subscriber, 20 changes: p50 ${p(0.5)} ms, p99 ${p(0.99)} ms`);
      expect(server.store.current().revision).toBe(22);
    } finally {
      stream.cancel();
      client.close();
      await server.close();
    }
  });
});

describe("the graylane command", () => {
  const run = runCli;

  it("serve --store kubernetes --kubeconfig FILE: apply through REST lands as a LaneGroup; SIGTERM stops it", async () => {
    await reset();
    const server = spawn(process.execPath, ["bin/graylane.mjs", "serve", "--port", "0", "--grpc-port", "0", "--store", "kubernetes", "--kubeconfig", kubeconfig]);
    let out = "";
    const exited = new Promise<number | null>((resolve) => server.on("close", resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout.on("data", (d) => { out += d; const m = /listening on (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]!); });
        server.stderr.on("data", (d) => (out += d));
        server.on("close", () => reject(new Error("serve exited: " + out)));
      });
      expect(out).toContain("store kubernetes");
      const file = join(dir, "mock.json");
      writeFileSync(file, JSON.stringify(mockGroup()));
      expect(await run("--server", url, "--actor", "dana", "apply", "-f", file)).toEqual({ code: 0, out: "lanegroup/mock created (revision 1)\n", err: "" });
      const obj = (await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body;
      expect(obj.metadata.annotations["graylane.io/actor"]).toBe("dana");
    } finally {
      server.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });

  it("refuses --kubeconfig without --store kubernetes, and says what is wrong with a kubeconfig", async () => {
    expect(await run("serve", "--kubeconfig", kubeconfig)).toMatchObject({ code: 2, err: "error: --kubeconfig goes with --store kubernetes\n" });
    const bad = join(dir, "bad-kubeconfig");
    writeFileSync(bad, "apiVersion: v1\nkind: Config\nclusters: []\n");
    const r = await run("serve", "--port", "0", "--grpc-port", "0", "--store", "kubernetes", "--kubeconfig", bad);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot start: --store kubernetes: .*bad-kubeconfig/);
  });

  it("store export from SQLite, import into Kubernetes: every group and its history, with their actors", async () => {
    await reset();
    const sqlite = new SqliteStore(join(dir, "export-from.db"));
    await sqlite.put(mockGroup(), { actor: "alice" });
    await sqlite.put(other(), { actor: "bob" });
    await sqlite.put(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 30 }] }), { actor: "carol" });
    await sqlite.delete("shop", { actor: "dave" });
    sqlite.close();
    const file = join(dir, "export.json");
    expect((await run("store", "export", "--store", `sqlite:${join(dir, "export-from.db")}`, "--file", file)).code).toBe(0);
    expect(await run("store", "import", "--store", "kubernetes", "--kubeconfig", kubeconfig, "-f", file))
      .toEqual({ code: 0, err: "", out: "imported 4 revisions as 4 writes; 1 lane groups at revision 4\n" });
    const s = await store();
    expect(s.revisions().map((r) => [r.revision, r.actor, r.op, r.group])).toEqual([[4, "dave", "delete", "shop"], [3, "carol", "replace", "mock"], [2, "bob", "create", "shop"], [1, "alice", "create", "mock"]]);
    expect(s.get("mock")!.lanegroup.lanes[0]!.weight).toBe(30);
    expect((await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body.spec.lanes[0].weight).toBe(30);
    // A second import into the same (no longer empty) store is refused, naming why.
    expect((await run("store", "import", "--store", "kubernetes", "--kubeconfig", kubeconfig, "-f", file)).err).toMatch(/the target store is not empty/);
  });

  it("crds prints the CRDs kubectl applies", async () => {
    const r = await run("crds");
    expect(r.code).toBe(0);
    expect(r.out.split("\n---\n").length).toBe(3);
    expect(r.out).toContain("name: lanegroups.graylane.io");
  });
});

describe("releases beside --store kubernetes", () => {
  it("are Release objects (spec + status subresource) and survive a control-plane restart", async () => {
    await reset();
    for (const r of (await kube.request("GET", "/apis/graylane.io/v1alpha1/releases")).body.items) await kube.request("DELETE", `/apis/graylane.io/v1alpha1/releases/${r.metadata.name}`);
    const opts = { port: 0, grpcPort: 0, store: `kubernetes:${kubeconfig}`, rollout: { tickMs: 20, reportSettleMs: 0 } };
    const call = async (server: { url: string }, method: string, path: string, body?: unknown) => {
      const res = await fetch(server.url + path, { method, headers: { "content-type": "application/json", "x-graylane-actor": "carol" }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, body: await res.json() as any };
    };
    let server = await startControlPlane(opts);
    try {
      expect((await call(server, "PUT", "/v1/lanegroups/mock", mockGroup())).status).toBe(201);
      const created = await call(server, "POST", "/v1/releases", { name: "r1", group: "mock", lane: "canary", steps: [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }] });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.release).toMatchObject({ status: "paused", weight: 10, createdBy: "carol" });
      const obj = (await kube.request("GET", "/apis/graylane.io/v1alpha1/releases/r1")).body;
      expect(obj.spec).toMatchObject({ group: "mock", lane: "canary", strategy: "canary" });
      expect(obj.status).toMatchObject({ status: "paused", weight: 10, currentStep: 1 });
      await server.close();

      server = await startControlPlane(opts);
      expect((await call(server, "GET", "/v1/releases/r1")).body.release).toMatchObject({ status: "paused", weight: 10, currentStep: 1, createdBy: "carol" });
      const approved = await call(server, "POST", "/v1/releases/r1/approve");
      expect(approved.status, JSON.stringify(approved.body)).toBe(200);
      await until("weight 50", async () => (await call(server, "GET", "/v1/releases/r1")).body.release.weight === 50);
      // Under GitOps the weight is laid over the spec, not written into it: REST shows both.
      const g = (await call(server, "GET", "/v1/lanegroups/mock")).body;
      expect(g.lanegroup.lanes[0].weight).toBe(0);
      expect(g.releaseOverlay).toEqual({ canary: { release: "r1", weight: 50, match: g.lanegroup.lanes[0].match } });
      await until("status written", async () => (await kube.request("GET", "/apis/graylane.io/v1alpha1/releases/r1")).body.status?.weight === 50);
      expect((await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body.spec.lanes[0].weight ?? 0).toBe(0);
      expect((await call(server, "GET", "/v1/revisions?limit=1")).body.revisions[0]).toMatchObject({ op: "create", group: "mock" }); // no revision per step
      // Finished, the release lays nothing over the lane: it is as the spec says.
      expect((await call(server, "POST", "/v1/releases/r1/promote")).status).toBe(200);
      expect((await call(server, "POST", "/v1/releases/r1/finish")).status).toBe(200);
      await until("overlay gone", async () => (await call(server, "GET", "/v1/lanegroups/mock")).body.releaseOverlay === undefined);
    } finally {
      await server.close();
    }
  });

  it("GitOps: a Release applied with kubectl starts, its weight reaches the filters over the unchanged spec, and its operations are CLI calls", async () => {
    await reset();
    for (const r of (await kube.request("GET", "/apis/graylane.io/v1alpha1/releases")).body.items) await kube.request("DELETE", `/apis/graylane.io/v1alpha1/releases/${r.metadata.name}`);
    const server = await startControlPlane({ port: 0, grpcPort: 0, store: `kubernetes:${kubeconfig}`, rollout: { tickMs: 20, reportSettleMs: 0 } });
    const { got, close } = ackingSubscriber(server.grpcPort, "gitops-0");
    const run = runCli;
    const canaryBuckets = () => { const l = got.at(-1)?.ruleSet?.groups.find((g) => g.name === "mock")?.lanes.find((x) => x.name === "canary"); return l && l.bucketEnd - l.bucketStart; };
    try {
      await kubectlApply(mockGroup({ lanes: [{ name: "canary", services: ["mocka"] }] }), "argocd-controller");
      await until("group pushed", () => canaryBuckets() === 0);
      const rel = { apiVersion: "graylane.io/v1alpha1", kind: "Release", metadata: { name: "gitops-r1" }, spec: { group: "mock", lane: "canary", steps: [{ setWeight: 25 }, { pause: {} }, { setWeight: 60 }, { pause: {} }] } };
      expect((await kube.request("POST", "/apis/graylane.io/v1alpha1/releases?fieldManager=argocd-controller", rel)).status).toBe(201);
      const started = await untilOk("the release started", () => kube.request("GET", "/apis/graylane.io/v1alpha1/releases/gitops-r1"), (r) => r.body.status?.status === "paused");
      expect(started.body.status).toMatchObject({ weight: 25, currentStep: 1, createdBy: "argocd-controller" });
      expect(started.body.spec).toEqual(rel.spec); // the spec as Git has it
      await until("25% pushed", () => canaryBuckets() === 2500);
      // The LaneGroup's spec did not move: Argo CD sees no drift.
      expect((await kube.request("GET", "/apis/graylane.io/v1alpha1/lanegroups/mock")).body.spec.lanes).toEqual([{ name: "canary", services: ["mocka"] }]);
      // approve is a CLI call (or POST /v1/releases/NAME/approve).
      expect(await run("--server", server.url, "--actor", "dana", "release", "approve", "gitops-r1")).toMatchObject({ code: 0 });
      await until("60% pushed", () => canaryBuckets() === 6000);
      expect(await run("--server", server.url, "--actor", "dana", "release", "abort", "gitops-r1")).toMatchObject({ code: 0 });
      await until("back to the spec's 0%", () => canaryBuckets() === 0);
      expect((await kube.request("GET", "/apis/graylane.io/v1alpha1/releases/gitops-r1")).body.status.status).toBe("aborted");
    } finally {
      close();
      await server.close();
    }
  });
});
