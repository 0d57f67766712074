// API-server commit → every filter ACKed, with `--store kubernetes` and the mesh controller, on a
// real kube-apiserver (built by `make kube-apiserver`) on etcd, all on this machine:
//   (1) a kubectl-style replace of a LaneGroup (a weight change): from the API server's answer to
//       the moment every subscriber ACKed the RuleSet that carries it;
//   (2) a canary Deployment becoming available (the status write the Deployment controller would
//       make): from the API server's answer to every subscriber ACKing the RuleSet with the
//       discovered lane; then the Deployment is deleted and the lane leaves again (not timed).
// Subscribers are grpc-js rule streams in this process that ACK what they get, as filters do. The
// floor beside them: the same subscribers, a REST PUT of the same change into a SQLite control plane.
import { create } from "@bufbuild/protobuf";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { RuleRequestSchema, type RuleResponse } from "../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { startControlPlane, type ControlPlane } from "../control-plane/src/server/index.js";
import { GraylaneClient } from "../control-plane/src/xds/index.js";
import { istioCrds } from "../test/support/istio-crds.js";
import { startKube, writeKubeconfig, type RunningKube } from "../test/support/kube.js";
import { isMain, percentile, QUICK, round, sleep, writeResult } from "./support/common.js";


const DEPLOY = "/apis/apps/v1/namespaces/default/deployments";
const LG = "/apis/graylane.io/v1alpha1/lanegroups";

const deployment = (name: string, labels: Record<string, string>) => ({
  apiVersion: "apps/v1", kind: "Deployment", metadata: { name, namespace: "default" },
  spec: { replicas: 1, selector: { matchLabels: { name } }, template: { metadata: { labels: { ...labels, name } }, spec: { containers: [{ name: "app", image: "registry.example.com/mock:1" }] } } },
});

/** In-process subscribers that ACK every RuleSet; resolves the time all of them hold one that `ok` accepts. */
function subscribers(cp: ControlPlane, n: number) {
  const clients: GraylaneClient[] = [];
  const latest: Array<RuleResponse | undefined> = new Array(n);
  const waiters: Array<{ ok: (r: RuleResponse) => boolean; resolve: (t: number) => void }> = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (latest.every((r) => r && w.ok(r))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(performance.now());
      }
    }
  };
  for (let i = 0; i < n; i++) {
    const c = new GraylaneClient(`127.0.0.1:${cp.grpcPort}`);
    clients.push(c);
    const s = c.streamRules();
    s.on("data", (r: RuleResponse) => {
      s.write(create(RuleRequestSchema, { instanceId: `sub-${i}`, versionInfo: r.version, responseNonce: r.nonce }));
      latest[i] = r;
      check();
    });
    s.on("error", () => {});
    s.write(create(RuleRequestSchema, { node: { id: `bench-${i}` }, instanceId: `sub-${i}` }));
  }
  return {
    allHold: (ok: (r: RuleResponse) => boolean, ms = 30_000) => new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("not every subscriber got the change in time")), ms);
      waiters.push({ ok, resolve: (x) => { clearTimeout(t); resolve(x); } });
      check();
    }),
    close: () => { for (const c of clients) c.close(); },
  };
}

const laneOf = (r: RuleResponse, service: string) => r.ruleSet?.groups.find((g) => g.name === "mock")?.lanes.find((l) => l.name === "canary")?.services.includes(service);
const weightOf = (r: RuleResponse) => { const l = r.ruleSet?.groups.find((g) => g.name === "mock")?.lanes.find((x) => x.name === "canary"); return l ? l.bucketEnd - l.bucketStart : -1; };
const stats = (xs: number[]) => ({ n: xs.length, p50: round(percentile(xs, 0.5), 1), p99: round(percentile(xs, 0.99), 1), max: round(Math.max(...xs), 1) });
const spec = (weight: number) => ({
  services: [{ name: "mocka" }, { name: "mockb" }, { name: "mockc" }], autoLanes: true,
  lanes: [{ name: "canary", labels: { ASM_TRAFFIC_TAG: "canary" }, weight }],
});

export async function runKubePush(opts: { changes?: number; subscribers?: number } = {}) {
  const CHANGES = opts.changes ?? (QUICK ? 3 : 20);
  const SUBSCRIBERS = opts.subscribers ?? (QUICK ? 2 : 20);
  let kube: RunningKube | undefined;
  const dir = mkdtempSync(join(tmpdir(), "graylane-bench-kube-"));
  const closers: Array<() => unknown> = [];
  try {
    kube = await startKube();
    const crds = [...readdirSync("deploy/crds").filter((f) => f.endsWith(".yaml")).map((f) => parse(readFileSync(`deploy/crds/${f}`, "utf8"))), ...istioCrds()];
    for (const crd of crds) await kube.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    for (const crd of crds) {
      const v = crd.spec.versions.find((x: { storage: boolean }) => x.storage).name;
      for (let i = 0; (await kube.request("GET", `/apis/${crd.spec.group}/${v}/${crd.spec.names.plural}`)).status !== 200; i++) {
        if (i > 300) throw new Error(`${crd.metadata.name} not served`);
        await sleep(100);
      }
    }
    const kubeconfig = writeKubeconfig(kube, join(dir, "kubeconfig"));
    const cp = await startControlPlane({
      port: 0, grpcPort: 0, store: `kubernetes:${kubeconfig}`,
      meshController: { mesh: { wasm: { url: "oci://registry.example.com/graylane/filter:0.1.0" }, gateway: false }, log: () => {} },
    });
    closers.push(() => cp.close());
    const subs = subscribers(cp, SUBSCRIBERS);
    closers.push(() => subs.close());
    const created = await kube.request("POST", LG, { apiVersion: "graylane.io/v1alpha1", kind: "LaneGroup", metadata: { name: "mock" }, spec: spec(0) });
    if (created.status !== 201) throw new Error(`LaneGroup: ${JSON.stringify(created.body)}`);
    await subs.allHold((r) => weightOf(r) === 0);

    // (1) kubectl apply of a weight change.
    const apply: number[] = [];
    for (let i = 1; i <= CHANGES; i++) {
      // As kubectl does: read, replace, again on a conflict (status writers move the resourceVersion).
      let replaced;
      for (let attempt = 0; ; attempt++) {
        const had = (await kube.request("GET", `${LG}/mock`)).body;
        replaced = await kube.request("PUT", `${LG}/mock`, { ...had, spec: spec(i) });
        if (replaced.status !== 409 || attempt > 10) break;
      }
      const at = performance.now();
      if (replaced.status !== 200) throw new Error(`replace: ${JSON.stringify(replaced.body)}`);
      apply.push((await subs.allHold((r) => weightOf(r) === i * 100)) - at);
    }

    // (2) a canary Deployment becoming available, then deleted.
    const available: number[] = [];
    const removed: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const name = `mocka-v1-canary-${i}`;
      await kube.request("POST", DEPLOY, deployment(name, { app: "mocka", ASM_TRAFFIC_TAG: "canary" }));
      const d = (await kube.request("GET", `${DEPLOY}/${name}`)).body;
      const st = await kube.request("PUT", `${DEPLOY}/${name}/status`, { ...d, status: { replicas: 1, availableReplicas: 1, readyReplicas: 1, updatedReplicas: 1 } });
      // (no other writer of a Deployment runs here: no controller-manager)
      const at = performance.now();
      if (st.status !== 200) throw new Error(`status: ${JSON.stringify(st.body)}`);
      available.push((await subs.allHold((r) => !!laneOf(r, "mocka"))) - at);
      const del = await kube.request("DELETE", `${DEPLOY}/${name}`);
      const dt = performance.now();
      if (del.status !== 200) throw new Error(`delete: ${JSON.stringify(del.body)}`);
      removed.push((await subs.allHold((r) => !laneOf(r, "mocka"))) - dt);
    }

    // The floor: the same change by REST into a SQLite control plane, the same subscribers.
    const floorCp = await startControlPlane({ port: 0, grpcPort: 0, store: ":memory:" });
    closers.push(() => floorCp.close());
    const floorSubs = subscribers(floorCp, SUBSCRIBERS);
    closers.push(() => floorSubs.close());
    const floor: number[] = [];
    for (let i = 0; i <= CHANGES; i++) {
      const res = await fetch(`${floorCp.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "mock", ...spec(i) }) });
      const at = performance.now();
      if (res.status >= 300) throw new Error(`PUT: ${res.status} ${await res.text()}`);
      const t = await floorSubs.allHold((r) => weightOf(r) === i * 100);
      if (i > 0) floor.push(t - at);
    }

    const result = {
      setup: {
        apiServer: `kube-apiserver ${"v1.32.3"} on Debian's etcd, loopback, RBAC, token auth`,
        controlPlane: "graylane in process: --store kubernetes, the mesh controller (Istio CRDs installed), watches on LaneGroups, Deployments, ReplicaSets",
        subscribers: `${SUBSCRIBERS} grpc-js rule streams in the bench process, each ACKing what it gets`,
        measure: "from the API server's answer to the write (or the REST answer, for the floor) until every subscriber holds a RuleSet with the change",
        changes: CHANGES,
      },
      kubectlApplyToAllAckedMs: stats(apply),
      canaryAvailableToAllAckedMs: stats(available),
      canaryDeletedToAllAckedMs: stats(removed),
      floorRestPutSqliteToAllAckedMs: stats(floor),
    };
    return result;
  } finally {
    for (const c of closers.reverse()) await Promise.resolve().then(c).catch(() => {});
    await kube?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const r = await runKubePush();
  console.log(JSON.stringify(r, null, 2));
  console.log(`wrote ${writeResult("kube-push", r)}`);
  process.exit(0);
}
