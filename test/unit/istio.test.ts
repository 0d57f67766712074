// control-plane/src/mesh/istio.ts and `graylane mesh manifests`: every generated object passes the
// Istio CRD schemas (Istio 1.30.3's, test/support/istio-schemas.ts), the WasmPlugin's pluginConfig is accepted by the
// real filter.wasm, and the VirtualServices route each request the filter decided to the subset
// named by the route header it wrote (its lane, or the fallback the filter chose; base by default).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { compileRuleSet } from "../../control-plane/src/compile/index.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";
import {
  istioObjects, lanesOf, routePatches, type HttpRoute, type IstioObject, type IstioOptions,
} from "../../control-plane/src/mesh/istio.js";
import { sha256Digest, wasmImageLayout } from "../../control-plane/src/mesh/oci.js";
import { main } from "../../control-plane/src/cli/main.js";
import { mockGroup, newFilter, WASM_PATH } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";
import { TestServer } from "../support/api.js";
import { validateIstio } from "../support/istio-schemas.js";

const group = (input: unknown): LaneGroup => {
  const r = parseLaneGroup(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
};

const WASM = { url: "oci://registry.example.com/graylane/filter:0.1.0", sha256: "a".repeat(64) };

/** Validates an object against its Istio CRD schema (throws with every problem). */
function validate(obj: IstioObject): void {
  validateIstio(obj);
  // The CRD's CEL rules, which a schema validator does not run.
  if (obj.kind === "WasmPlugin") {
    expect(obj.spec.url).toMatch(/^(oci|file|https?):\/\//);
    expect(obj.spec.selector !== undefined && (obj.spec.targetRefs ?? obj.spec.targetRef) !== undefined).toBe(false);
  }
}

describe("the Istio schema check itself", () => {
  it("refuses what Istio's CRDs refuse, naming the place", () => {
    const dr = { apiVersion: "networking.istio.io/v1", kind: "DestinationRule", metadata: { name: "d" } };
    expect(() => validateIstio({ ...dr, spec: { host: "h", subsets: [{ name: "a", labels: { v: 1 } }] } } as never)).toThrow(/\/spec\/subsets\/0\/labels\/v must be string/);
    expect(() => validateIstio({ ...dr, spec: { host: "h", trafficPolicy: { loadBalancer: { simple: "FASTEST" } } } } as never)).toThrow(/simple must be equal to one of the allowed values/);
    expect(() => validateIstio({ ...dr, apiVersion: "networking.istio.io/v2" } as never)).toThrow(/no Istio CRD schema/);
    expect(() => validateIstio({ ...dr, spec: { host: "h" } } as never)).not.toThrow();
  });
});

const byKind = <K extends IstioObject["kind"]>(objects: IstioObject[], kind: K) =>
  objects.filter((o): o is Extract<IstioObject, { kind: K }> => o.kind === kind);

/** The first route of a VirtualService matching the request (Istio semantics for what we generate). */
function matchRoute(http: HttpRoute[], path: string, headers: Array<[string, string]>): HttpRoute | undefined {
  const header = (n: string) => headers.find(([k]) => k === n)?.[1];
  return http.find((r) => !r.match || r.match.some((m) =>
    (!m.uri || path.split("?")[0].startsWith((m.uri as { prefix: string }).prefix)) &&
    Object.entries(m.headers ?? {}).every(([n, sm]) => header(n) === (sm as { exact: string }).exact)));
}

/** Where the filter sends lane `lane` for `service`: the lane if it has it, else down its fallback chain. */
function expectedRoute(g: LaneGroup, lane: string, service: string): string {
  let at = lane;
  while (at !== g.baseLane) {
    const l = g.lanes.find((x) => x.name === at)!;
    if (l.services.includes(service)) return at;
    at = l.fallback;
  }
  return g.baseLane;
}

/** The route values the filter writes for `service`, whatever the lane (base excluded), sorted. */
function written(g: LaneGroup, service: string): string[] {
  return [...new Set(g.lanes.map((l) => expectedRoute(g, l.name, service)))].filter((r) => r !== g.baseLane).sort();
}

const cases: Array<{ name: string; group: LaneGroup; opts: IstioOptions }> = [
  { name: "mock (DESIGN.md), base on version: v1", group: group(mockGroup()), opts: { wasm: WASM, laneLabels: { base: { version: "v1" } } } },
  {
    name: "shop: three lanes, chained fallbacks, a mixed-case route header, its own label key",
    group: group(shopGroup({ routeHeader: "X-Shop-Route" })),
    opts: { wasm: WASM, namespace: "shop", laneLabelKey: "example.com/lane", gateway: { gateway: "istio-system/public", namespace: "istio-ingress", selector: { app: "gw" }, hosts: ["shop.example.com"] } },
  },
];

describe("Istio objects", () => {
  for (const { name, group: g, opts } of cases) {
    describe(name, () => {
      const objects = istioObjects([g], opts);

      it("every object passes the Istio CRD schemas, in apply order", () => {
        for (const obj of objects) validate(obj);
        const services = g.services.map((s) => s.name);
        expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual([
          ...services.map((s) => `WasmPlugin/graylane-${s}`), "WasmPlugin/graylane-gateway",
          ...services.map((s) => `DestinationRule/graylane-${s}`),
          ...services.map((s) => `VirtualService/graylane-${s}`),
          `VirtualService/graylane-${g.name}-ingress`,
        ]);
      });

      it("WasmPlugins: FAIL_OPEN, phase, selector, module, the control-plane cluster and the group's RuleSet", () => {
        const plugins = byKind(objects, "WasmPlugin");
        const ruleSet = Buffer.from(compileRuleSet([g]).bytes).toString("base64");
        for (const p of plugins) {
          expect(p.spec).toMatchObject({
            url: WASM.url, sha256: WASM.sha256, pluginName: "graylane", type: "HTTP",
            phase: "STATS", priority: 1000, failStrategy: "FAIL_OPEN",
            pluginConfig: { cluster: "outbound|7071||graylane-control-plane.graylane-system.svc.cluster.local", ruleSet },
          });
        }
        const ns = opts.namespace ?? "default";
        g.services.forEach((s, i) => {
          expect(plugins[i].metadata).toMatchObject({ namespace: ns });
          expect(plugins[i].spec.selector).toEqual({ matchLabels: { app: s.name } });
          expect(plugins[i].spec.pluginConfig).toMatchObject({ service: s.name, node: { id: `${s.name}.${ns}`, workload: s.name, namespace: ns } });
          expect(plugins[i].spec.pluginConfig).not.toHaveProperty("edge");
        });
        const gw = plugins.at(-1)!;
        const gateway = opts.gateway || { namespace: "istio-system", selector: { istio: "ingressgateway" } };
        expect(gw.metadata?.namespace).toBe(gateway.namespace);
        expect(gw.spec.selector).toEqual({ matchLabels: gateway.selector });
        expect(gw.spec.pluginConfig).toMatchObject({ edge: true });
        expect(gw.spec.pluginConfig).not.toHaveProperty("service");
      });

      it("DestinationRules: one subset per lane that has the service, base first, with the lane's labels", () => {
        for (const dr of byKind(objects, "DestinationRule")) {
          const service = dr.metadata!.name!.replace(/^graylane-/, "");
          expect(dr.spec?.host).toBe(`${service}.${opts.namespace ?? "default"}.svc.cluster.local`);
          expect(dr.spec?.subsets?.[0].name).toBe(g.baseLane);
          expect(dr.spec!.subsets!.slice(1).map((s) => s.name).sort()).toEqual(written(g, service));
          expect(dr.spec?.subsets?.map((s) => s.name)).toEqual(lanesOf(g, service));
          for (const s of dr.spec!.subsets!) {
            const want = opts.laneLabels?.[s.name!] ?? { [opts.laneLabelKey ?? "graylane.io/lane"]: s.name! };
            expect(s.labels).toEqual(want);
          }
        }
      });

      it("VirtualServices: header matches are exactly the route values the filter writes for the service; base is the default", () => {
        const header = g.routeHeader.toLowerCase();
        for (const vs of byKind(objects, "VirtualService").filter((v) => !v.spec?.gateways)) {
          const service = vs.metadata!.name!.replace(/^graylane-/, "");
          const http = vs.spec!.http!;
          const lanes = http.slice(0, -1);
          expect(lanes.map((r) => Object.keys(r.match?.[0].headers ?? {}))).toEqual(lanes.map(() => [header]));
          expect(lanes.map((r) => (r.match?.[0].headers?.[header] as { exact: string }).exact).sort()).toEqual(written(g, service));
          for (const r of lanes) expect(r.route).toEqual([{ destination: { host: vs.spec!.hosts![0], subset: (r.match?.[0].headers?.[header] as { exact: string }).exact } }]);
          expect(http.at(-1)).toEqual({ name: g.baseLane, route: [{ destination: { host: vs.spec!.hosts![0], subset: g.baseLane } }] });
        }
      });

      it("the real filter accepts every pluginConfig, and each decision is routed to the subset its route header names", async () => {
        const plugins = byKind(objects, "WasmPlugin");
        const drs = byKind(objects, "DestinationRule");
        const vss = byKind(objects, "VirtualService");
        // A sidecar, outbound: the lane arrives propagated; the destination is the :authority.
        const sidecar = await newFilter({ config: plugins[0].spec.pluginConfig as Record<string, unknown>, direction: "outbound" });
        for (const s of g.services) {
          const vs = vss.find((v) => v.metadata?.name === `graylane-${s.name}`)!;
          const subsets = drs.find((d) => d.metadata?.name === `graylane-${s.name}`)!.spec!.subsets!.map((x) => x.name);
          for (const lane of [g.baseLane, ...g.lanes.map((l) => l.name)]) {
            const d = sidecar.decide({ ":method": "GET", ":path": "/", ":authority": s.name, [g.laneHeader]: lane }, {}, g.laneHeader, g.routeHeader.toLowerCase());
            expect(d.route, `${s.name} in lane ${lane}`).toBe(expectedRoute(g, lane, s.name));
            const hit = matchRoute(vs.spec!.http!, "/", d.stream.requestHeaders);
            expect(hit?.route?.[0].destination).toEqual({ host: vs.spec!.hosts![0], subset: d.route });
            expect(subsets).toContain(d.route);
          }
        }
        // The ingress gateway: the edge decides from the path (override header for the lane).
        const gateway = await newFilter({ config: plugins.at(-1)!.spec.pluginConfig as Record<string, unknown> });
        const ingress = vss.find((v) => v.spec?.gateways)!;
        for (const s of g.services.filter((x) => x.paths.length)) {
          for (const lane of [g.baseLane, ...g.lanes.map((l) => l.name)]) {
            const path = `${s.paths[0]}/x?y=1`;
            const d = gateway.decide({ ":method": "GET", ":path": path, ":authority": "public.example.com", [g.overrideHeader!]: lane }, {}, g.laneHeader, g.routeHeader.toLowerCase());
            expect(d.route, `edge, ${s.name} in lane ${lane}`).toBe(expectedRoute(g, lane, s.name));
            const hit = matchRoute(ingress.spec!.http!, path, d.stream.requestHeaders);
            expect(hit?.route?.[0].destination).toEqual({ host: `${s.name}.${opts.namespace ?? "default"}.svc.cluster.local`, subset: d.route });
          }
        }
      });

      it("route patches: the lane routes only, named graylane-*, for the services and the gateway", () => {
        const header = g.routeHeader.toLowerCase();
        const patches = routePatches([g], opts);
        expect(patches.map((p) => p.service ?? "(ingress)")).toEqual([...g.services.map((s) => s.name), "(ingress)"]);
        for (const p of patches) {
          expect(p.defaultSubset).toBe(g.baseLane);
          for (const r of p.http) {
            expect(r.name).toMatch(/^graylane-/);
            expect(r.route?.[0].destination?.subset).toBe((r.match?.[0].headers?.[header] as { exact: string }).exact);
          }
          if (p.service) expect(p.http.map((r) => r.route?.[0].destination?.subset).sort()).toEqual(written(g, p.service));
        }
      });
    });
  }

  it("options: v1beta1, label overrides, fail strategy, phase, no gateway, a subset of services", () => {
    const g = group(mockGroup());
    const objects = istioObjects([g], {
      wasm: { url: "file:///var/local/graylane/filter.wasm" }, networkingVersion: "v1beta1", failStrategy: "FAIL_CLOSE",
      phase: "AUTHN", priority: -5, gateway: false, services: ["mocka"], cluster: "graylane", plugin: { reportIntervalMs: 1000 },
      laneLabels: { canary: { version: "v2", track: "canary" } },
    });
    for (const obj of objects) validate(obj);
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}/${o.metadata?.name}`)).toEqual([
      "extensions.istio.io/v1alpha1 WasmPlugin/graylane-mocka",
      "networking.istio.io/v1beta1 DestinationRule/graylane-mocka",
      "networking.istio.io/v1beta1 VirtualService/graylane-mocka",
    ]);
    const [wp, dr] = objects as [Extract<IstioObject, { kind: "WasmPlugin" }>, Extract<IstioObject, { kind: "DestinationRule" }>];
    expect(wp.spec).toMatchObject({ failStrategy: "FAIL_CLOSE", phase: "AUTHN", priority: -5, pluginConfig: { cluster: "graylane", reportIntervalMs: 1000 } });
    expect(wp.spec).not.toHaveProperty("sha256");
    expect(dr.spec?.subsets).toEqual([{ name: "base", labels: { "graylane.io/lane": "base" } }, { name: "canary", labels: { version: "v2", track: "canary" } }]);
  });

  it("the schema check has teeth: a wrong phase, a bad sha256 or a non-string label is refused", () => {
    const [wp, , , , dr] = istioObjects([group(mockGroup())], { wasm: WASM });
    expect(() => validate({ ...wp, spec: { ...(wp as any).spec, phase: "LATE" } } as IstioObject)).toThrow(/phase/);
    expect(() => validate({ ...wp, spec: { ...(wp as any).spec, sha256: "XYZ" } } as IstioObject)).toThrow(/sha256/);
    expect(() => validate({ ...dr, spec: { host: "x", subsets: [{ name: "a", labels: { v: 1 } }] } } as unknown as IstioObject)).toThrow(/labels/);
  });
});

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
