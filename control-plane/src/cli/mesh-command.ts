// `graylane mesh manifests`: the Istio objects of lane groups (control-plane/src/mesh/istio.ts), read
// from the running control plane (--group) or from a lane group file (--file, offline), as YAML on
// stdout, as a kubectl `List` with -o json, or as files in --out DIR. With --patch, the route blocks
// to insert into VirtualServices the user already has, instead of VirtualService objects.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, Option } from "commander";
import { parseAllDocuments, stringify } from "yaml";
import type { FieldError } from "../model/errors.js";
import { parseLaneGroup, type LaneGroup } from "../model/lanegroup.js";
import {
  DEFAULT_CONTROL_PLANE, DEFAULT_FAIL_STRATEGY, DEFAULT_GATEWAY, DEFAULT_LANE_LABEL_KEY, DEFAULT_PHASE, DEFAULT_PRIORITY,
  istioObjects, routePatches, type FailStrategy, type IstioObject, type IstioOptions, type RoutePatch, type WasmPhase,
} from "../mesh/istio.js";
import { sha256Digest, wasmImageLayout } from "../mesh/oci.js";
import { gatewayApiObjects, gatewayRef, type KubeObject } from "../mesh/gateway-api.js";
import { ApiError, type ApiClient } from "./client.js";

/** Where the demo manifests (deploy/demo) mount filter.wasm into every proxy. */
export const DEFAULT_WASM_URL = "file:///var/local/graylane/filter.wasm";

export interface MeshIo {
  out(text: string): void;
  err(text: string): void;
  stdin?: () => string;
}

interface ManifestFlags {
  group?: string[];
  file?: string;
  namespace: string;
  url: string;
  wasm: string;
  sha256?: string | false;
  imagePullPolicy?: "IfNotPresent" | "Always";
  imagePullSecret?: string;
  phase: WasmPhase;
  priority: string;
  failStrategy: FailStrategy;
  controlPlane: string;
  cluster?: string;
  laneLabelKey: string;
  laneLabel?: string[];
  workloadLabel: string;
  clusterDomain: string;
  gateway: string | false;
  gatewayNamespace: string;
  gatewaySelector: string;
  gatewayHost?: string[];
  service?: string[];
  networkingVersion: "v1" | "v1beta1";
  virtualServices: boolean;
  gatewayApi?: boolean;
  port: string;
  targetPort?: string;
  patch?: boolean;
  out?: string;
}

const repeat = (v: string, acc: string[] | undefined) => [...(acc ?? []), v];

/** Exit 2 after printing `error: message` (usage, file or connection problems). */
function usage(io: MeshIo, message: string): never {
  io.err(`error: ${message}\n`);
  throw new CommanderError(2, "graylane.usage", message);
}

/** Exit 1, every path and message on stderr (main prints ApiErrors): the lane groups are invalid. */
function refused(errors: FieldError[], prefix: string): never {
  throw new ApiError(400, errors.map((e) => ({ path: `${prefix}${e.path}`, message: e.message })));
}

/** `k=v,k2=v2` → {k: v, k2: v2}. */
function parseLabels(io: MeshIo, text: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(",")) {
    const at = pair.indexOf("=");
    if (at <= 0) usage(io, `${flag} ${JSON.stringify(text)}: want key=value[,key=value]`);
    out[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return out;
}

/** `--lane-label LANE=key=value[,key=value]` (repeatable) → {LANE: labels}. */
function parseLaneLabels(io: MeshIo, values: string[]): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const v of values) {
    const at = v.indexOf("=");
    if (at <= 0) usage(io, `--lane-label ${JSON.stringify(v)}: want LANE=key=value[,key=value]`);
    out[v.slice(0, at)] = { ...out[v.slice(0, at)], ...parseLabels(io, v.slice(at + 1), "--lane-label") };
  }
  return out;
}

function parseHostPort(io: MeshIo, text: string): { host: string; port: number } {
  const at = text.lastIndexOf(":");
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) usage(io, `--control-plane ${JSON.stringify(text)}: want HOST:PORT`);
  return { host: text.slice(0, at), port };
}

/** Lane groups of a YAML or JSON file (one group, a list, or what `get -o json|yaml` prints), validated. */
function groupsFromFile(io: MeshIo, file: string): LaneGroup[] {
  let text: string;
  try { text = file === "-" ? (io.stdin ?? (() => readFileSync(0, "utf8")))() : readFileSync(file, "utf8"); } catch (e) {
    usage(io, `cannot read ${file}: ${(e as Error).message}`);
  }
  const items: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) usage(io, `${file}: ${doc.errors[0].message}`);
    const v = doc.toJS() as unknown;
    if (v === null || v === undefined) continue;
    const list = Array.isArray(v) ? v : (v as { lanegroups?: unknown }).lanegroups ?? [v];
    if (!Array.isArray(list)) usage(io, `${file}: lanegroups must be a list`);
    for (const item of list) items.push(item && typeof item === "object" && "lanegroup" in item ? (item as { lanegroup: unknown }).lanegroup : item);
  }
  if (!items.length) usage(io, `${file}: no lane groups in it`);
  return items.map((item, i) => {
    const r = parseLaneGroup(item);
    if (!r.ok) refused(r.errors, `${file} #${i + 1} `);
    return r.value;
  });
}

/** The hex digest Istio checks `sha256` against: the image manifest's for oci://, the module's otherwise. */
function wasmSha256(io: MeshIo, url: string, wasmPath: string): string | undefined {
  if (url.startsWith("oci://") && url.includes("@sha256:")) return undefined; // pinned in the URL
  if (!existsSync(wasmPath)) {
    io.err(`warning: ${wasmPath} not found (make build): the WasmPlugins carry no sha256; pass --wasm or --sha256\n`);
    return undefined;
  }
  const module = readFileSync(wasmPath);
  const digest = url.startsWith("oci://") ? wasmImageLayout(module).manifestDigest : sha256Digest(module);
  return digest.slice("sha256:".length);
}

function kindFile(obj: { kind: string; metadata?: { name?: string } }, i: number): string {
  return `${String(i + 1).padStart(2, "0")}-${obj.kind.toLowerCase()}-${obj.metadata?.name}.yaml`;
}

function patchName(p: RoutePatch): string {
  return p.service ? `graylane-${p.service}` : `graylane-${p.group}-ingress`;
}

/** One patch as YAML: comment lines saying where, then the route blocks (a list to paste under spec.http). */
export function patchYaml(p: RoutePatch): string {
  const target = p.service
    ? `your VirtualService for ${p.hosts.join(", ")} (lane group ${p.group})`
    : `your VirtualService bound to ${p.gateways?.join(", ")} for hosts ${p.hosts.join(", ")} (lane group ${p.group}, ingress)`;
  const head = p.http.length
    ? `# ${target}:\n# insert these routes at the top of spec.http, before your own routes, and make your\n# routes to ${p.service ? "this host" : "these services"} name subset "${p.defaultSubset}" (the DestinationRules define the subsets).\n`
    : `# ${target}:\n# no lane has ${p.service ?? "these services"}, nothing to insert; make your routes name subset "${p.defaultSubset}".\n`;
  return head + stringify(p.http, { lineWidth: 0 });
}

function objectsYaml(objects: unknown[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

function packageVersion(): string {
  try { return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version; } catch { return "unknown"; }
}

/**
 * Registers `mesh manifests` on the graylane program: `client` is the CLI's API client (its --server,
 * --actor and credentials), used by --group; -o json is read from the program's options.
 */
export function registerMeshCommands(program: Command, io: MeshIo, client: () => ApiClient): Command {
  const mesh = program.command("mesh").description("service-mesh integration (Istio)");
  mesh.command("manifests")
    .description("Istio WasmPlugins, DestinationRules and VirtualServices for lane groups, as YAML")
    .option("--group <name>", "lane group read from the control plane (--server; repeatable)", repeat)
    .option("-f, --file <file>", "lane group file, YAML or JSON ('-' for standard input), offline")
    .option("--namespace <ns>", "namespace of the services and the generated objects", "default")
    .option("--url <url>", "the filter module: oci://REGISTRY/REPO:TAG, file:///PATH or https://URL", DEFAULT_WASM_URL)
    .option("--wasm <path>", "the built filter.wasm, for the sha256", "filter/build/filter.wasm")
    .option("--sha256 <hex>", "WasmPlugin sha256 (default: the image manifest's digest for oci://, the module's otherwise)")
    .option("--no-sha256", "no sha256 in the WasmPlugins")
    .addOption(new Option("--image-pull-policy <policy>", "WasmPlugin imagePullPolicy").choices(["IfNotPresent", "Always"]))
    .option("--image-pull-secret <name>", "WasmPlugin imagePullSecret")
    .addOption(new Option("--phase <phase>", "WasmPlugin phase").choices(["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE"]).default(DEFAULT_PHASE))
    .option("--priority <n>", "WasmPlugin priority within its phase (higher runs first)", String(DEFAULT_PRIORITY))
    .addOption(new Option("--fail-strategy <strategy>", "WasmPlugin failStrategy").choices(["FAIL_OPEN", "FAIL_CLOSE", "FAIL_RELOAD"]).default(DEFAULT_FAIL_STRATEGY))
    .option("--control-plane <host:port>", "the control plane's gRPC Service", `${DEFAULT_CONTROL_PLANE.host}:${DEFAULT_CONTROL_PLANE.port}`)
    .option("--cluster <name>", "Envoy cluster of the control plane (default: outbound|PORT||HOST of --control-plane)")
    .option("--lane-label-key <key>", "pod label naming an instance's lane", DEFAULT_LANE_LABEL_KEY)
    .option("--lane-label <lane=key=value>", "a lane's pod labels instead of LABEL_KEY=LANE, e.g. base=version=v1 (repeatable)", repeat)
    .option("--workload-label <key>", "pod label holding the service name (WasmPlugin selectors)", "app")
    .option("--cluster-domain <domain>", "Kubernetes cluster domain", "cluster.local")
    .option("--gateway <gateway>", "Gateway of the ingress VirtualService ([namespace/]name)", DEFAULT_GATEWAY.gateway)
    .option("--no-gateway", "no gateway WasmPlugin and no ingress VirtualService")
    .option("--gateway-namespace <ns>", "namespace of the ingress gateway's pods", DEFAULT_GATEWAY.namespace)
    .option("--gateway-selector <k=v,...>", "labels of the ingress gateway's pods", Object.entries(DEFAULT_GATEWAY.selector).map(([k, v]) => `${k}=${v}`).join(","))
    .option("--gateway-host <host>", "hosts of the ingress VirtualService (repeatable; default *)", repeat)
    .option("--service <name>", "only this service's objects (repeatable)", repeat)
    .addOption(new Option("--networking-version <version>", "networking.istio.io version (v1beta1 before Istio 1.22)").choices(["v1", "v1beta1"]).default("v1"))
    .option("--no-virtual-services", "leave VirtualServices out (yours route; see --patch)")
    .option("--gateway-api", "routes as Gateway API objects instead of DestinationRules and VirtualServices: a Service per lane, HTTPRoutes for the mesh (GAMMA) and the --gateway")
    .option("--port <port>", "with --gateway-api: the services' port", "80")
    .option("--target-port <port>", "with --gateway-api: the pods' port (default: --port)")
    .option("--patch", "print the route blocks to insert into your existing VirtualServices, instead of objects")
    .option("--out <dir>", "write one file per object (or patch) into DIR instead of stdout")
    .action(async (flags: ManifestFlags) => {
      const o = { ...flags, group: flags.group ?? [], laneLabel: flags.laneLabel ?? [], gatewayHost: flags.gatewayHost ?? [], service: flags.service ?? [] };
      if ((o.file === undefined) === (o.group.length === 0)) usage(io, "mesh manifests: give --group NAME (from the control plane) or --file FILE");
      const priority = Number(o.priority);
      if (!Number.isInteger(priority) || Math.abs(priority) > 0x7fffffff) usage(io, `--priority ${o.priority}: want an integer`);
      if (typeof o.sha256 === "string" && !/^[a-f0-9]{64}$/.test(o.sha256)) usage(io, `--sha256 ${o.sha256}: want 64 lowercase hex digits`);
      if (!/^(oci|file|https?):\/\//.test(o.url)) usage(io, `--url ${o.url}: want oci://, file://, http:// or https://`);

      let groups: LaneGroup[];
      let ruleSetGroups: LaneGroup[] | undefined;
      if (o.file !== undefined) {
        groups = groupsFromFile(io, o.file);
      } else {
        const r = await client().request<{ lanegroups: Array<{ lanegroup: LaneGroup }> }>("GET", "/v1/lanegroups");
        const all = r.body.lanegroups.map((s) => s.lanegroup);
        groups = o.group.map((name) => {
          const found = all.find((x) => x.name === name);
          if (!found) throw new ApiError(404, [{ path: "", message: `lane group ${name} not found` }]);
          return found;
        });
        ruleSetGroups = all; // the initial RuleSet is what the control plane serves
      }
      const known = new Set(groups.flatMap((g) => g.services.map((s) => s.name)));
      for (const s of o.service) if (!known.has(s)) usage(io, `--service ${s}: not a service of ${groups.map((g) => g.name).join(", ")}`);

      const sha256 = o.sha256 === false ? undefined : o.sha256 ?? wasmSha256(io, o.url, o.wasm);
      const opts: IstioOptions = {
        wasm: { url: o.url, sha256, imagePullPolicy: o.imagePullPolicy, imagePullSecret: o.imagePullSecret },
        namespace: o.namespace,
        clusterDomain: o.clusterDomain,
        laneLabelKey: o.laneLabelKey,
        laneLabels: parseLaneLabels(io, o.laneLabel),
        workloadLabel: o.workloadLabel,
        phase: o.phase,
        priority,
        failStrategy: o.failStrategy,
        controlPlane: parseHostPort(io, o.controlPlane),
        cluster: o.cluster,
        ruleSetGroups,
        gateway: o.gateway === false ? false : {
          gateway: o.gateway, namespace: o.gatewayNamespace,
          selector: parseLabels(io, o.gatewaySelector, "--gateway-selector"),
          hosts: o.gatewayHost.length ? o.gatewayHost : DEFAULT_GATEWAY.hosts,
        },
        services: o.service.length ? o.service : undefined,
        networkingVersion: o.networkingVersion,
      };
      const output = program.opts<{ output: "table" | "json" | "yaml" }>().output;

      if (o.patch) {
        const patches = routePatches(groups, opts);
        if (o.out) {
          mkdirSync(o.out, { recursive: true });
          for (const p of patches) {
            const file = join(o.out, `patch-virtualservice-${patchName(p)}.yaml`);
            writeFileSync(file, patchYaml(p));
            io.out(`wrote ${file}\n`);
          }
        } else if (output === "json") io.out(JSON.stringify(patches, null, 2) + "\n");
        else io.out(patches.map(patchYaml).join("---\n"));
        return;
      }

      let objects: Array<IstioObject | KubeObject> = istioObjects(groups, opts).filter((x) => o.virtualServices || x.kind !== "VirtualService");
      if (o.gatewayApi) {
        const port = Number(o.port);
        const targetPort = o.targetPort === undefined ? port : Number(o.targetPort);
        for (const [flag, v] of [["--port", port], ["--target-port", targetPort]] as const) {
          if (!Number.isInteger(v) || v < 1 || v > 65535) usage(io, `${flag} ${flag === "--port" ? o.port : o.targetPort}: want 1-65535`);
        }
        try {
          objects = [...objects.filter((x) => x.kind === "WasmPlugin"), ...gatewayApiObjects(groups, {
            namespace: o.namespace, laneLabelKey: o.laneLabelKey, laneLabels: opts.laneLabels, workloadLabel: o.workloadLabel, port, targetPort,
            gateway: o.gateway === false ? false : gatewayRef(o.gateway),
            hostnames: o.gatewayHost, services: opts.services,
          })];
        } catch (e) {
          usage(io, `mesh manifests --gateway-api: ${(e as Error).message}`);
        }
      }
      if (o.out) {
        mkdirSync(o.out, { recursive: true });
        objects.forEach((obj, i) => {
          const file = join(o.out!, kindFile(obj, i));
          writeFileSync(file, output === "json" ? JSON.stringify(obj, null, 2) + "\n" : stringify(obj, { lineWidth: 0 }));
          io.out(`wrote ${file}\n`);
        });
      } else if (output === "json") io.out(JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2) + "\n");
      else io.out(`# graylane ${packageVersion()} mesh manifests: lane groups ${groups.map((g) => g.name).join(", ")}\n` + objectsYaml(objects));
    });
  return mesh;
}
