// `graylane mesh manifests`, the CLI, against a control plane (--group) and files (--file): every
// object it prints passes Istio's CRD schemas and equals what control-plane/src/mesh/istio.ts gives.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import { istioObjects, type IstioObject } from "../../control-plane/src/mesh/istio.js";
import { sha256Digest, wasmImageLayout } from "../../control-plane/src/mesh/oci.js";
import { main } from "../../control-plane/src/cli/main.js";
import { mockGroup, WASM_PATH } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";
import { TestServer } from "../support/api.js";
import { byKind, validateIstio } from "../support/istio-schemas.js";

const group = (input: unknown): LaneGroup => {
  const r = parseLaneGroup(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};
const validate = (obj: IstioObject): void => validateIstio(obj);

describe("graylane mesh manifests", () => {
  let t: TestServer;
  let dir: string;
  beforeAll(async () => {
    t = await TestServer.start();
    dir = mkdtempSync(join(tmpdir(), "graylane-mesh-"));
  });
  afterAll(async () => {
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(...argv: string[]) {
    let out = "";
    let err = "";
    const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: { GRAYLANE_SERVER: t.url } });
    return { code, out, err };
  }
  const docs = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS() as IstioObject);
  const wasm = readFileSync(WASM_PATH);

  it("--file: YAML objects that pass the schemas; file:// carries the module's sha256", async () => {
    const r = await run("mesh", "manifests", "--file", "demo/lanegroup.json", "--lane-label", "base=version=v1", "--wasm", WASM_PATH);
    expect(r).toMatchObject({ code: 0, err: "" });
    expect(r.out).toMatch(/^# graylane \S+ mesh manifests: lane groups mock\n/);
    const objects = docs(r.out);
    for (const o of objects) validate(o);
    expect(objects.map((o) => o.kind)).toEqual([...Array(4).fill("WasmPlugin"), ...Array(3).fill("DestinationRule"), ...Array(4).fill("VirtualService")]);
    const wp = byKind(objects, "WasmPlugin")[0];
    expect(wp.spec).toMatchObject({ url: "file:///var/local/graylane/filter.wasm", sha256: sha256Digest(wasm).slice(7), failStrategy: "FAIL_OPEN" });
    expect(byKind(objects, "DestinationRule")[0].spec?.subsets).toEqual([
      { name: "base", labels: { version: "v1" } }, { name: "canary", labels: { "graylane.io/lane": "canary" } },
    ]);
    // The same objects as the library gives (the CLI adds nothing of its own).
    const lib = istioObjects([group(JSON.parse(readFileSync("demo/lanegroup.json", "utf8")))], {
      wasm: { url: "file:///var/local/graylane/filter.wasm", sha256: sha256Digest(wasm).slice(7) }, laneLabels: { base: { version: "v1" } },
    });
    expect(objects).toEqual(lib);
  });

  it("--url oci://: sha256 is the image manifest's digest (what Istio checks), as make image writes it", async () => {
    const r = await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--url", "oci://ghcr.io/example/graylane-filter:0.1.0", "--wasm", WASM_PATH, "--no-gateway");
    expect(r.code).toBe(0);
    const wp = byKind(docs(r.out), "WasmPlugin");
    expect(wp).toHaveLength(3);
    expect(wp[0].spec.sha256).toBe(wasmImageLayout(wasm).manifestDigest.slice(7));
    expect(wp[0].spec.sha256).not.toBe(sha256Digest(wasm).slice(7));
    // Pinned by digest in the URL: no sha256; explicit or none on request.
    const pinned = await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--url", `oci://ghcr.io/x/f@sha256:${"b".repeat(64)}`);
    expect(byKind(docs(pinned.out), "WasmPlugin")[0].spec).not.toHaveProperty("sha256");
    const explicit = await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--sha256", "c".repeat(64));
    expect(byKind(docs(explicit.out), "WasmPlugin")[0].spec.sha256).toBe("c".repeat(64));
    const none = await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--no-sha256");
    expect(byKind(docs(none.out), "WasmPlugin")[0].spec).not.toHaveProperty("sha256");
    const missing = await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--wasm", join(dir, "nope.wasm"));
    expect(missing.code).toBe(0);
    expect(missing.err).toMatch(/^warning: .*nope\.wasm not found/);
    expect(byKind(docs(missing.out), "WasmPlugin")[0].spec).not.toHaveProperty("sha256");
  });

  it("--patch: the route blocks to insert, as YAML lists with where to put them", async () => {
    const r = await run("mesh", "manifests", "--file", "demo/lanegroup.json", "--patch");
    expect(r).toMatchObject({ code: 0, err: "" });
    const parts = r.out.split(/^---\n/m);
    expect(parts).toHaveLength(4); // mocka, mockb, mockc, the gateway's
    expect(parts[0]).toMatch(/^# your VirtualService for mocka\.default\.svc\.cluster\.local \(lane group mock\):\n# insert these routes at the top of spec\.http/);
    expect(parseYaml(parts[0])).toEqual([{
      name: "graylane-canary",
      match: [{ headers: { "x-graylane-route": { exact: "canary" } } }],
      route: [{ destination: { host: "mocka.default.svc.cluster.local", subset: "canary" } }],
    }]);
    expect(parts[1]).toMatch(/no lane has mockb, nothing to insert; make your routes name subset "base"/);
    expect(parseYaml(parts[1])).toEqual([]);
    expect(parts[3]).toMatch(/^# your VirtualService bound to graylane-gateway for hosts \*/);
    expect(parseYaml(parts[3])).toEqual([{
      name: "graylane-mocka-canary",
      match: [{ uri: { prefix: "/mock" }, headers: { "x-graylane-route": { exact: "canary" } } }],
      route: [{ destination: { host: "mocka.default.svc.cluster.local", subset: "canary" } }],
    }]);
    // Every block is a valid VirtualService route.
    for (const part of parts) validateIstio({ apiVersion: "networking.istio.io/v1", kind: "VirtualService", metadata: { name: "x" }, spec: { hosts: ["x"], http: parseYaml(part) } } as never);

    const json = await run("-o", "json", "mesh", "manifests", "--file", "demo/lanegroup.json", "--patch", "--service", "mocka", "--no-gateway");
    expect(JSON.parse(json.out)).toEqual([{
      service: "mocka", group: "mock", hosts: ["mocka.default.svc.cluster.local"], defaultSubset: "base",
      http: [expect.objectContaining({ name: "graylane-canary" })],
    }]);
  });

  it("-o json (a kubectl List), --out DIR, --no-virtual-services", async () => {
    const json = await run("-o", "json", "mesh", "manifests", "-f", "demo/lanegroup.json", "--no-virtual-services");
    const list = JSON.parse(json.out);
    expect(list).toMatchObject({ apiVersion: "v1", kind: "List" });
    expect(list.items.map((o: IstioObject) => o.kind)).toEqual([...Array(4).fill("WasmPlugin"), ...Array(3).fill("DestinationRule")]);

    const out = join(dir, "manifests");
    const r = await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--out", out, "--service", "mocka");
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual([
      "01-wasmplugin-graylane-mocka.yaml", "02-wasmplugin-graylane-gateway.yaml", "03-destinationrule-graylane-mocka.yaml",
      "04-virtualservice-graylane-mocka.yaml", "05-virtualservice-graylane-mock-ingress.yaml",
    ]);
    expect(r.out.trim().split("\n")).toHaveLength(5);
    validate(parseYaml(readFileSync(join(out, "04-virtualservice-graylane-mocka.yaml"), "utf8")));
  });

  it("--group: from the control plane, with the RuleSet it serves (every group)", async () => {
    expect((await t.call("PUT", "/v1/lanegroups/mock", mockGroup())).status).toBe(201);
    expect((await t.call("PUT", "/v1/lanegroups/shop", shopGroup())).status).toBe(201);
    const r = await run("mesh", "manifests", "--group", "mock", "--namespace", "demo");
    expect(r.code).toBe(0);
    const objects = docs(r.out);
    for (const o of objects) validate(o);
    expect(byKind(objects, "DestinationRule").map((d) => d.spec?.host)).toEqual(["mocka", "mockb", "mockc"].map((s) => `${s}.demo.svc.cluster.local`));
    const stored = (await t.call("GET", "/v1/lanegroups")).body.lanegroups.map((x: { lanegroup: LaneGroup }) => x.lanegroup);
    const served = Buffer.from(compileRuleSet(stored).bytes).toString("base64");
    for (const wp of byKind(objects, "WasmPlugin")) expect((wp.spec.pluginConfig as { ruleSet: string }).ruleSet).toBe(served);
    const missing = await run("mesh", "manifests", "--group", "nope");
    expect(missing).toMatchObject({ code: 1, err: "error: lane group nope not found\n" });
  });

  it("usage and invalid groups: exit 2 and exit 1 with every path", async () => {
    expect(await run("mesh", "manifests")).toMatchObject({ code: 2, err: "error: mesh manifests: give --group NAME (from the control plane) or --file FILE\n" });
    expect((await run("mesh", "manifests", "-f", join(dir, "missing.yaml"))).code).toBe(2);
    expect((await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--lane-label", "base")).err).toMatch(/want LANE=key=value/);
    expect((await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--service", "nope")).code).toBe(2);
    expect((await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--url", "ftp://x/f.wasm")).code).toBe(2);
    expect((await run("mesh", "manifests", "-f", "demo/lanegroup.json", "--phase", "LATE")).code).toBe(2);
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "name: bad\nservices: [{name: a}]\nlanes: [{name: x, weight: 120, services: [zz]}]\n");
    const r = await run("mesh", "manifests", "-f", bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error: ${bad} #1 /lanes/0/weight: must be from 0 to 100\n`);
  });
});
