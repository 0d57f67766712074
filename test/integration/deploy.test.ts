// deploy/: the control plane's install manifests (ports, the gRPC port declared as such, the SQLite
// volume, RBAC) agree with each other and with `graylane mesh manifests`' defaults; the demo's
// manifests give every generated subset its pods; the demo's mock app answers like demo/mock-app.ts.
import { afterAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { DEFAULT_CONTROL_PLANE, istioCluster, istioObjects, type IstioObject } from "../../control-plane/src/mesh/istio.js";
import { DEFAULT_WASM_URL } from "../../control-plane/src/cli/mesh-command.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { validateIstio } from "../support/istio-schemas.js";

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

function load(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, "utf8")).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS() as Obj;
  });
}
const find = (objs: Obj[], kind: string, name?: string) => {
  const hit = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(hit, `${kind}/${name ?? "*"}`).toHaveLength(1);
  return hit[0];
};
const selects = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe("deploy/control-plane.yaml", () => {
  const objs = load("deploy/control-plane.yaml");
  const deployment = find(objs, "Deployment", "graylane-control-plane");
  const service = find(objs, "Service", "graylane-control-plane");
  const pod = deployment.spec.template;
  const container = pod.spec.containers[0];

  it("one namespace, graylane-system, holds everything", () => {
    expect(objs.map((o) => o.kind).sort()).toEqual(["Deployment", "Namespace", "PersistentVolumeClaim", "Role", "RoleBinding", "Service", "ServiceAccount"]);
    expect(find(objs, "Namespace").metadata.name).toBe("graylane-system");
    for (const o of objs.filter((x) => x.kind !== "Namespace")) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe("graylane-system");
  });

  it("the Service: REST on 7070, gRPC on 7071 declared as gRPC (port name grpc-*, appProtocol grpc), to the pod's ports", () => {
    expect(selects(service.spec.selector, pod.metadata.labels)).toBe(true);
    expect(selects(deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    const ports = Object.fromEntries(service.spec.ports.map((p: any) => [p.port, p]));
    expect(Object.keys(ports)).toEqual(["7070", "7071"]);
    expect(ports[7070]).toMatchObject({ appProtocol: "http" });
    expect(ports[7070].name).toMatch(/^http-/);
    expect(ports[7071]).toMatchObject({ appProtocol: "grpc" });
    expect(ports[7071].name).toMatch(/^grpc-/);
    const containerPorts = Object.fromEntries(container.ports.map((p: any) => [p.name, p.containerPort]));
    expect(containerPorts[ports[7070].targetPort]).toBe(7070);
    expect(containerPorts[ports[7071].targetPort]).toBe(7071);
    expect(container.readinessProbe.httpGet).toEqual({ path: "/readyz", port: ports[7070].targetPort });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/healthz", port: ports[7070].targetPort });
  });

  it("`graylane serve` on all interfaces, both ports, SQLite at /data on the PVC; one replica, recreated", () => {
    const args = container.args.join(" ");
    expect(args).toMatch(/^serve /);
    expect(args).toContain("--host 0.0.0.0");
    expect(args).toContain("--port 7070");
    expect(args).toContain("--grpc-port 7071");
    expect(args).toContain("--store sqlite:/data/graylane.db");
    const mount = container.volumeMounts.find((m: any) => m.mountPath === "/data");
    const volume = pod.spec.volumes.find((v: any) => v.name === mount.name);
    expect(volume.persistentVolumeClaim.claimName).toBe(find(objs, "PersistentVolumeClaim").metadata.name);
    expect(find(objs, "PersistentVolumeClaim").spec.accessModes).toEqual(["ReadWriteOnce"]);
    expect(deployment.spec).toMatchObject({ replicas: 1, strategy: { type: "Recreate" } });
    // A read-only root file system still needs a writable /tmp (tsx's cache).
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(pod.spec.volumes.find((v: any) => v.name === container.volumeMounts.find((m: any) => m.mountPath === "/tmp").name).emptyDir).toEqual({});
  });

  it("RBAC: its own ServiceAccount without a token, bound to a Role that grants nothing", () => {
    const sa = find(objs, "ServiceAccount");
    expect(pod.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(sa.automountServiceAccountToken).toBe(false);
    const role = find(objs, "Role");
    expect(role.rules).toEqual([]);
    const binding = find(objs, "RoleBinding");
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: "graylane-system" }]);
  });

  it("`graylane mesh manifests` points the filters at this Service's gRPC port by default", () => {
    const host = `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;
    expect(DEFAULT_CONTROL_PLANE).toEqual({ host, port: 7071 });
    expect(istioCluster(DEFAULT_CONTROL_PLANE.host, DEFAULT_CONTROL_PLANE.port)).toBe(`outbound|7071||${host}`);
  });
});

describe("deploy/demo/mock-apps.yaml", () => {
  const objs = load("deploy/demo/mock-apps.yaml");
  const group = parseLaneGroup(JSON.parse(readFileSync("demo/lanegroup.json", "utf8")));
  if (!group.ok) throw new Error("demo/lanegroup.json is invalid");
  const g: LaneGroup = group.value;
  // As docs/istio.md generates them for the demo.
  const generated = istioObjects([g], { wasm: { url: DEFAULT_WASM_URL }, laneLabels: { base: { version: "v1" } } });
  const pods = objs.filter((o) => o.kind === "Deployment").map((d) => ({ name: d.metadata.name, ...d.spec.template }));

  it("every subset selects exactly its version's pods, and every WasmPlugin the service's pods", () => {
    for (const dr of generated.filter((o): o is Extract<IstioObject, { kind: "DestinationRule" }> => o.kind === "DestinationRule")) {
      const service = dr.spec!.host.split(".")[0];
      const svc = find(objs, "Service", service);
      for (const subset of dr.spec!.subsets!) {
        const hits = pods.filter((p) => selects(svc.spec.selector, p.metadata.labels) && selects(subset.labels!, p.metadata.labels));
        expect(hits.map((p) => p.name), `${service}/${subset.name}`).toEqual([`${service}-${subset.name === "base" ? "v1" : "v2"}`]);
      }
    }
    for (const wp of generated.filter((o): o is Extract<IstioObject, { kind: "WasmPlugin" }> => o.kind === "WasmPlugin" && o.metadata?.namespace === "default")) {
      expect(pods.filter((p) => selects(wp.spec.selector!.matchLabels!, p.metadata.labels))).toHaveLength(2);
    }
  });

  it("the proxies mount filter.wasm where the default --url points; the Gateway passes its schema", () => {
    const dir = new URL(DEFAULT_WASM_URL).pathname.replace(/\/[^/]+$/, "");
    for (const p of pods) {
      const volumes = JSON.parse(p.metadata.annotations["sidecar.istio.io/userVolume"]);
      const mounts = JSON.parse(p.metadata.annotations["sidecar.istio.io/userVolumeMount"]);
      expect(volumes).toEqual({ "graylane-filter": { configMap: { name: "graylane-filter" } } });
      expect(mounts).toEqual({ "graylane-filter": { mountPath: dir, readOnly: true } });
    }
    const gateway = find(objs, "Gateway", "graylane-gateway");
    validateIstio(gateway as never);
    const ingress = generated.find((o) => o.kind === "VirtualService" && o.spec?.gateways) as Extract<IstioObject, { kind: "VirtualService" }>;
    expect(ingress.spec?.gateways).toEqual([gateway.metadata.name]);
    expect(ingress.metadata?.namespace).toBe(gateway.metadata.namespace);
  });

  describe("the mock app script", () => {
    const children: ChildProcess[] = [];
    const dir = mkdtempSync(join(tmpdir(), "graylane-mock-"));
    afterAll(() => {
      for (const c of children) c.kill();
      rmSync(dir, { recursive: true, force: true });
    });
    const freePort = () => new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => { const { port } = s.address() as AddressInfo; s.close(() => resolve(port)); });
    });
    async function start(env: Record<string, string>): Promise<void> {
      const child = spawn(process.execPath, [join(dir, "mock.mjs")], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once("data", () => resolve());
        child.once("exit", (code) => reject(new Error(`mock app exited ${code}`)));
      });
    }

    it("answers <name>(<version>)->… and forwards only the trace header", async () => {
      writeFileSync(join(dir, "mock.mjs"), find(objs, "ConfigMap", "graylane-mock-app").data["mock.mjs"]);
      const [a, b] = [await freePort(), await freePort()];
      // An echo of the headers mockb's call brings, standing in for mockc.
      const echo = await freePort();
      const { createServer: http } = await import("node:http");
      const seen: Array<Record<string, unknown>> = [];
      const server = http((req, res) => { seen.push(req.headers); res.end("mockc(v1)"); }).listen(echo, "127.0.0.1");
      try {
        await start({ NAME: "mockb", VERSION: "v1", PORT: String(b), NEXT: `127.0.0.1:${echo}` });
        await start({ NAME: "mocka", VERSION: "v2", PORT: String(a), NEXT: `127.0.0.1:${b}` });
        const res = await fetch(`http://127.0.0.1:${a}/mock`, { headers: { "my-request-id": "10001", "x-graylane-lane": "canary" } });
        expect(await res.text()).toBe("mocka(v2)->mockb(v1)->mockc(v1)");
        expect(seen[0]["my-request-id"]).toBe("10001");
        expect(seen[0]).not.toHaveProperty("x-graylane-lane");
        expect((await fetch(`http://127.0.0.1:${a}/other`)).status).toBe(404);
      } finally {
        server.close();
      }
    });
  });
});
