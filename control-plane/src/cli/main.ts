// The `graylane` command. main() takes argv and its output streams and returns the exit code, so
// tests run it in-process; bin/graylane.mjs runs it through tsx for `npx graylane`.
// Exit codes: 0 done, 1 the API refused (every path and message on stderr), 2 usage, file or
// connection problems.
import { readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { parseAllDocuments, stringify } from "yaml";
import type { RuleServerStatus, SubscriberSummary, TrafficSummary } from "../contracts.js";
import type { FieldError } from "../model/errors.js";
import type { LaneGroup } from "../model/lanegroup.js";
import type { Revision, RevisionSummary } from "../store/types.js";
import { ApiClient, ApiError, ConnectionError } from "./client.js";
import { grpcStatusesText, ms, percent, short, table } from "./format.js";
import { DEFAULT_GRPC_PORT, DEFAULT_HOST, DEFAULT_PORT, startControlPlane, type ControlPlaneOptions } from "../server/index.js";
import { registerReleaseCommands } from "./release-command.js";
import { newToken, ROLES, Tokens, type Role } from "../auth/tokens.js";
import { loadOrCreateKey, type OverrideKey } from "../auth/override.js";
import { registerMeshCommands } from "./mesh-command.js";
import { DEFAULT_CONTROL_PLANE } from "../mesh/istio.js";
import { DEFAULT_WEBHOOK_SERVICE, webhookYaml, type WebhookTarget } from "../api/webhook-config.js";
import { crdFiles, writeCrds } from "../kube/crds.js";
import { openStore } from "../store/index.js";
import { exportStore, importStore, readExport } from "../store/transfer.js";

export const DEFAULT_SERVER = `http://${DEFAULT_HOST}:${DEFAULT_PORT}`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  /** Standard input, for `apply -f -`. */
  stdin?: () => string;
  /** Resolves when `serve` should stop (default: SIGINT or SIGTERM). */
  stopSignal?: () => Promise<void>;
  /** Told the URL once `serve` listens (tests). */
  onListening?: (url: string) => void;
  /** Output is a terminal (`release watch` redraws in place). */
  tty?: boolean;
  /** Passed to startControlPlane by `serve`, under the options its flags set (tests). */
  serverOptions?: Partial<ControlPlaneOptions>;
}

/** Usage, file or connection problem: exit 2. */
class UsageError extends Error {}

/** Errors already printed; exit with this code. */
class Exit extends Error {
  constructor(readonly code: number) { super(`exit ${code}`); }
}

type Output = "table" | "json" | "yaml";
interface Globals { server: string; output: Output; actor?: string }

interface StoredLaneGroup { revision: number; lanegroup: LaneGroup }

const defaultIo = (): Io => ({
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  stdin: () => readFileSync(0, "utf8"),
  tty: process.stdout.isTTY === true,
});

function packageVersion(): string {
  try { return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version; } catch { return "unknown"; }
}

function defaultActor(env: Io["env"]): string | undefined {
  if (env.GRAYLANE_ACTOR) return env.GRAYLANE_ACTOR;
  try { return userInfo().username || undefined; } catch { return undefined; }
}

function errorLines(errors: FieldError[], prefix = ""): string {
  return errors.map((e) => `error: ${prefix}${e.path ? `${e.path}: ` : ""}${e.message}\n`).join("");
}

/** Lane groups from one apply file: YAML or JSON, one group, a list, or what `get -o json|yaml` prints. */
export function lanegroupsFromText(text: string, file: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new UsageError(`${file}: ${doc.errors[0].message}`);
    const v = doc.toJS() as unknown;
    if (v === null || v === undefined) continue;
    const items = Array.isArray(v) ? v : (v as { lanegroups?: unknown }).lanegroups !== undefined ? (v as { lanegroups: unknown[] }).lanegroups : [v];
    if (!Array.isArray(items)) throw new UsageError(`${file}: lanegroups must be a list`);
    for (const item of items) {
      const wrapped = item && typeof item === "object" && "lanegroup" in item ? (item as { lanegroup: unknown }).lanegroup : item;
      out.push(wrapped);
    }
  }
  if (!out.length) throw new UsageError(`${file}: no lane groups in it`);
  return out;
}

function parseHeader(text: string): [string, string] {
  const at = text.indexOf(":", text.startsWith(":") ? 1 : 0);
  if (at <= 0) throw new UsageError(`-H ${JSON.stringify(text)}: want 'name: value'`);
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

function lanesCell(g: LaneGroup): string {
  return g.lanes.map((l) => {
    const how = [l.weight ? `${l.weight}%` : "", l.match.length ? "rules" : ""].filter(Boolean).join(",");
    return how ? `${l.name}(${how})` : l.name;
  }).join(" ");
}

export function buildProgram(io: Io): Command {
  const program = new Command("graylane")
    .description("Gray releases and traffic lanes: the Graylane control plane and its client")
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError("(run with --help for usage)")
    .option("--server <url>", "control plane REST API (env GRAYLANE_SERVER)", io.env.GRAYLANE_SERVER || DEFAULT_SERVER)
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json", "yaml"]).default("table"))
    .option("--actor <name>", "who makes the change, recorded in the revision (env GRAYLANE_ACTOR, default your user name)")
    .option("--token <token>", "API bearer token (env GRAYLANE_TOKEN)")
    .option("--ca <file>", "CA certificate (PEM) to trust for an https --server (env GRAYLANE_CA)");

  const globals = (): Globals => {
    const o = program.opts<{ server: string; output: Output; actor?: string }>();
    return { server: o.server, output: o.output, actor: o.actor ?? defaultActor(io.env) };
  };
  const client = () => {
    const g = globals();
    const o = program.opts<{ token?: string; ca?: string }>();
    const caFile = o.ca ?? (io.env.GRAYLANE_CA || undefined);
    let ca: Buffer | undefined;
    try { ca = caFile ? readFileSync(caFile) : undefined; } catch (e) { throw new UsageError(`--ca ${caFile}: ${(e as Error).message}`); }
    return new ApiClient(g.server, g.actor, undefined, o.token ?? (io.env.GRAYLANE_TOKEN || undefined), ca);
  };
  /** Prints `body` as json/yaml when asked; else returns true so the caller prints its table. */
  const structured = (body: unknown): boolean => {
    const { output } = globals();
    if (output === "json") io.out(JSON.stringify(body, null, 2) + "\n");
    else if (output === "yaml") io.out(stringify(body));
    return output === "table";
  };

  program.command("serve")
    .description("run the control plane: REST API, gRPC rule push and traffic ingestion")
    .option("--host <host>", "listen address", DEFAULT_HOST)
    .option("--port <port>", "REST port (0: any free port)", String(DEFAULT_PORT))
    .option("--store <spec>", "sqlite:PATH, :memory:, etcd://HOST:PORT (replicas) or kubernetes (LaneGroup objects)", "sqlite:.data/graylane.db")
    .option("--kubeconfig <file>", "with --store kubernetes: the kubeconfig to use (default: in-cluster, else ~/.kube/config)")
    .option("--grpc-port <port>", "gRPC rule push and traffic port (0: any free port)", String(DEFAULT_GRPC_PORT))
    .option("--wasm <path>", "filter.wasm used by /v1/preview")
    .option("--tokens <file>", "API tokens file ({tokens: [{name, role, sha256}]}); also env GRAYLANE_TOKENS=name:role:token,...")
    .option("--override-key-file <file>", "HMAC key for signed overrides (created with a random key if missing)")
    .option("--override-key-previous-file <file>", "the key before a rotation, still accepted")
    .option("--tls-cert <file>", "certificate (PEM) for HTTPS and gRPC over TLS")
    .option("--tls-key <file>", "its private key (PEM)")
    .option("--tls-client-ca <file>", "CA (PEM) whose client certificates filters must present on gRPC (mTLS)")
    .option("--webhook-port <port>", "serve the validating admission webhook (LaneGroup, Release) over HTTPS on this port (0: any free port)")
    .option("--webhook-cert <file>", "the webhook's serving certificate (PEM; its CA is the caBundle of `webhook manifest`)")
    .option("--webhook-key <file>", "its private key (PEM)")
    .option("--mesh-controller", "with --store kubernetes: keep every LaneGroup's Istio objects in step with it and with the workloads (autoLanes)")
    .option("--mesh-wasm <url>", "with --mesh-controller: the WasmPlugins' module (oci://, https:// or file://)")
    .option("--mesh-wasm-sha256 <hex>", "with --mesh-controller: the module's (or OCI manifest's) SHA-256")
    .option("--mesh-control-plane <host:port>", "with --mesh-controller: the gRPC Service the filters reach", `${DEFAULT_CONTROL_PLANE.host}:${DEFAULT_CONTROL_PLANE.port}`)
    .option("--mesh-namespace <ns>", "with --mesh-controller: the namespace of a service whose hosts name none", "default")
    .option("--no-mesh-gateway", "with --mesh-controller: no ingress gateway WasmPlugin or ingress routes")
    .addOption(new Option("--mesh-routes <api>", "with --mesh-controller: route lanes by Istio DestinationRules and VirtualServices, or by Gateway API lane Services and HTTPRoutes").choices(["istio", "gateway-api"]).default("istio"))
    .option("--mesh-port <port>", "with --mesh-routes gateway-api: the services' port", "80")
    .option("--mesh-target-port <port>", "with --mesh-routes gateway-api: the pods' port (default: --mesh-port)")
    .option("--traffic-db <file>", "beside --store etcd:// or kubernetes: a SQLite file for the traffic counters, so a restart keeps them exact (default: in memory)")
    .option("--lease-namespace <ns>", "with --store kubernetes and several replicas: the namespace of the Lease that makes one of them active")
    .action(async (o: { host: string; port: string; grpcPort: string; store: string; kubeconfig?: string; wasm?: string; tokens?: string; overrideKeyFile?: string;
      overrideKeyPreviousFile?: string; tlsCert?: string; tlsKey?: string; tlsClientCa?: string; webhookPort?: string; webhookCert?: string; webhookKey?: string;
      meshController?: boolean; meshWasm?: string; meshWasmSha256?: string; meshControlPlane: string; meshNamespace: string; meshGateway: boolean; leaseNamespace?: string; trafficDb?: string; meshRoutes: "istio" | "gateway-api"; meshPort: string; meshTargetPort?: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${o.port}: want 0-65535`);
      const grpcPort = Number(o.grpcPort);
      if (!Number.isInteger(grpcPort) || grpcPort < 0 || grpcPort > 65535) throw new UsageError(`--grpc-port ${o.grpcPort}: want 0-65535`);
      if (o.kubeconfig && o.store !== "kubernetes") throw new UsageError("--kubeconfig goes with --store kubernetes");
      const store = o.kubeconfig ? `kubernetes:${o.kubeconfig}` : o.store;
      let tokens = Tokens.empty();
      try {
        if (o.tokens) tokens = tokens.merge(Tokens.fromFile(o.tokens));
        if (io.env.GRAYLANE_TOKENS) tokens = tokens.merge(Tokens.fromEnv(io.env.GRAYLANE_TOKENS));
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      let overrideKey: OverrideKey | undefined;
      try {
        if (o.overrideKeyFile) overrideKey = { current: loadOrCreateKey(o.overrideKeyFile), previous: o.overrideKeyPreviousFile ? loadOrCreateKey(o.overrideKeyPreviousFile) : undefined };
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      if (!!o.tlsCert !== !!o.tlsKey) throw new UsageError("--tls-cert and --tls-key go together");
      if (o.tlsClientCa && !o.tlsCert) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
      let tls: { cert: Buffer; key: Buffer; clientCa?: Buffer } | undefined;
      try {
        if (o.tlsCert && o.tlsKey) tls = { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey), clientCa: o.tlsClientCa ? readFileSync(o.tlsClientCa) : undefined };
      } catch (e) {
        throw new UsageError(`cannot read TLS files: ${(e as Error).message}`);
      }
      let webhook: ControlPlaneOptions["webhook"];
      if (o.webhookPort !== undefined || o.webhookCert || o.webhookKey) {
        if (o.webhookPort === undefined || !o.webhookCert || !o.webhookKey) throw new UsageError("--webhook-port, --webhook-cert and --webhook-key go together (the API server calls webhooks over HTTPS only)");
        const webhookPort = Number(o.webhookPort);
        if (!/^\d+$/.test(o.webhookPort) || webhookPort > 65535) throw new UsageError(`--webhook-port ${o.webhookPort}: want 0-65535`);
        try { webhook = { port: webhookPort, cert: readFileSync(o.webhookCert), key: readFileSync(o.webhookKey) }; } catch (e) {
          throw new UsageError(`cannot read the webhook's TLS files: ${(e as Error).message}`);
        }
      }
      let meshController: ControlPlaneOptions["meshController"];
      if (o.meshController) {
        if (store !== "kubernetes" && !store.startsWith("kubernetes:")) throw new UsageError("--mesh-controller goes with --store kubernetes");
        if (!o.meshWasm) throw new UsageError("--mesh-controller needs --mesh-wasm URL (the module its WasmPlugins load)");
        const m = /^(.+):(\d{1,5})$/.exec(o.meshControlPlane);
        if (!m) throw new UsageError(`--mesh-control-plane ${o.meshControlPlane}: want HOST:PORT`);
        const port = Number(o.meshPort);
        const targetPort = o.meshTargetPort === undefined ? port : Number(o.meshTargetPort);
        if (![port, targetPort].every((p) => Number.isInteger(p) && p >= 1 && p <= 65535)) throw new UsageError(`--mesh-port ${o.meshPort} / --mesh-target-port ${o.meshTargetPort ?? ""}: want 1-65535`);
        meshController = { mesh: {
          wasm: { url: o.meshWasm, ...(o.meshWasmSha256 ? { sha256: o.meshWasmSha256 } : {}) },
          controlPlane: { host: m[1]!, port: Number(m[2]) }, namespace: o.meshNamespace, ...(o.meshGateway ? {} : { gateway: false as const }),
          routes: o.meshRoutes, port, targetPort,
        } };
      } else if (o.meshWasm) {
        throw new UsageError("--mesh-wasm goes with --mesh-controller");
      }
      if (o.leaseNamespace && store !== "kubernetes" && !store.startsWith("kubernetes:")) throw new UsageError("--lease-namespace goes with --store kubernetes");
      let server;
      try {
        // One tokens file holds both kinds: API tokens for REST, role node for the filters on gRPC.
        server = await startControlPlane({
          ...io.serverOptions, host: o.host, port, grpcPort, store, wasmPath: o.wasm, tokens, nodeTokens: tokens, overrideKey,
          tls: tls && { cert: tls.cert, key: tls.key }, grpcTls: tls, webhook, meshController,
          ...(o.leaseNamespace ? { lease: { namespace: o.leaseNamespace } } : {}), trafficDb: o.trafficDb,
        });
      } catch (e) {
        throw new UsageError(`cannot start: ${(e as Error).message}`);
      }
      io.out(`graylane: REST API listening on ${server.url} (gRPC rule push and traffic on ${o.host}:${server.grpcPort}, store ${o.store})\n`);
      if (server.meshController) io.out("graylane: mesh controller keeping the Istio objects of every LaneGroup\n");
      if (server.webhookUrl) io.out(`graylane: admission webhook listening on ${server.webhookUrl}/validate\n`);
      io.onListening?.(server.url);
      await (io.stopSignal ?? untilSignal)();
      await server.close();
      io.out("graylane: stopped\n");
    });

  program.command("webhook")
    .description("the validating admission webhook's Kubernetes configuration")
    .command("manifest")
    .description("print the ValidatingWebhookConfiguration (and, for the shipped Service, that Service) with the caBundle of --ca-file")
    .requiredOption("--ca-file <file>", "PEM of the CA that signed the webhook's certificate (--webhook-cert)")
    .option("--service <ns/name[:port]>", "reach the webhook through this Service", `${DEFAULT_WEBHOOK_SERVICE.namespace}/${DEFAULT_WEBHOOK_SERVICE.name}:${DEFAULT_WEBHOOK_SERVICE.port}`)
    .option("--url <https-url>", "reach the webhook at this URL instead (outside the cluster)")
    .action((o: { caFile: string; service: string; url?: string }) => {
      let caPem: Buffer;
      try { caPem = readFileSync(o.caFile); } catch (e) { throw new UsageError(`--ca-file ${o.caFile}: ${(e as Error).message}`); }
      if (!caPem.toString("utf8").includes("-----BEGIN CERTIFICATE-----")) throw new UsageError(`--ca-file ${o.caFile}: not a PEM certificate`);
      let target: WebhookTarget;
      if (o.url !== undefined) {
        let u: URL;
        try { u = new URL(o.url); } catch { throw new UsageError(`--url ${o.url}: not a URL`); }
        if (u.protocol !== "https:" || u.search || u.hash || u.username) throw new UsageError(`--url ${o.url}: want https://HOST[:PORT][/PATH] (the API server calls webhooks over HTTPS, without query or credentials)`);
        target = { url: o.url };
      } else {
        const m = /^([a-z0-9-]+)\/([a-z0-9-]+)(?::(\d+))?$/.exec(o.service);
        if (!m || (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535))) throw new UsageError(`--service ${o.service}: want NAMESPACE/NAME[:PORT]`);
        target = { service: { namespace: m[1]!, name: m[2]!, port: m[3] === undefined ? 443 : Number(m[3]) } };
      }
      io.out(webhookYaml({ caPem, target }));
    });

  const storeCmd = program.command("store").description("move every lane group and its history between stores (run where the stores are, not through the API)");
  const openFor = async (spec: string, kubeconfig?: string) => {
    if (kubeconfig && spec !== "kubernetes") throw new UsageError("--kubeconfig goes with --store kubernetes");
    try { return await openStore(kubeconfig ? `kubernetes:${kubeconfig}` : spec); } catch (e) { throw new UsageError(`--store ${spec}: ${(e as Error).message}`); }
  };
  storeCmd.command("export")
    .description("the revision log (oldest first, each with the state after it) and the current groups, as JSON")
    .requiredOption("--store <spec>", "sqlite:PATH, etcd://HOST:PORT or kubernetes")
    .option("--kubeconfig <file>", "with --store kubernetes")
    .option("--file <file>", "write to this file instead of standard output")
    .action(async (o: { store: string; kubeconfig?: string; file?: string }) => {
      const store = await openFor(o.store, o.kubeconfig);
      try {
        const doc = exportStore(store);
        const text = JSON.stringify(doc, null, 2) + "\n";
        if (o.file) {
          writeFileSync(o.file, text);
          io.out(`exported ${doc.groups.length} lane groups and ${doc.revisions.length} revisions to ${o.file}\n`);
        } else io.out(text);
      } finally {
        await store.close();
      }
    });
  storeCmd.command("import")
    .description("replay an export into an empty store: the same contents in the same order, with their actors")
    .requiredOption("--store <spec>", "sqlite:PATH, etcd://HOST:PORT or kubernetes")
    .option("--kubeconfig <file>", "with --store kubernetes")
    .requiredOption("-f, --filename <file>", "the export ('-' for standard input)")
    .action(async (o: { store: string; kubeconfig?: string; filename: string }) => {
      let doc;
      try {
        doc = readExport(JSON.parse(o.filename === "-" ? io.stdin?.() ?? "" : readFileSync(o.filename, "utf8")));
      } catch (e) {
        throw new UsageError(`${o.filename}: ${(e as Error).message}`);
      }
      const store = await openFor(o.store, o.kubeconfig);
      try {
        await importStore(store, doc, (line) => io.out(line + "\n"));
      } catch (e) {
        throw new UsageError((e as Error).message);
      } finally {
        await store.close();
      }
    });

  program.command("crds")
    .description("the LaneGroup, Release and LaneGroupRevision CustomResourceDefinitions (YAML, for kubectl apply -f -)")
    .option("--out <dir>", "write one file per CRD into this directory instead")
    .action((o: { out?: string }) => {
      if (o.out) for (const f of writeCrds(o.out)) io.out(`wrote ${f}\n`);
      else io.out([...crdFiles().values()].join("---\n"));
    });

  program.command("apply")
    .description("create or replace the lane groups of a YAML or JSON file (one group or a list)")
    .requiredOption("-f, --filename <file>", "the file ('-' for standard input)")
    .action(async (o: { filename: string }) => {
      let text: string;
      try { text = o.filename === "-" ? (io.stdin ?? (() => readFileSync(0, "utf8")))() : readFileSync(o.filename, "utf8"); } catch (e) {
        throw new UsageError(`cannot read ${o.filename}: ${(e as Error).message}`);
      }
      const groups = lanegroupsFromText(text, o.filename);
      const c = client();
      const results: unknown[] = [];
      let refused = false;
      for (const [i, g] of groups.entries()) {
        const name = (g as { name?: unknown })?.name;
        if (typeof name !== "string" || !name) {
          io.err(errorLines([{ path: "/name", message: "a lane group needs a name" }], `${o.filename} #${i + 1}: `));
          refused = true;
          continue;
        }
        try {
          const r = await c.request<StoredLaneGroup>("PUT", `/v1/lanegroups/${encodeURIComponent(name)}`, g);
          results.push({ ...r.body, created: r.status === 201 });
          if (globals().output === "table") io.out(`lanegroup/${name} ${r.status === 201 ? "created" : "updated"} (revision ${r.body.revision})\n`);
        } catch (e) {
          if (!(e instanceof ApiError)) throw e;
          io.err(errorLines(e.errors, `lanegroup/${name}: `));
          refused = true;
        }
      }
      if (globals().output !== "table") structured(results);
      if (refused) throw new Exit(1);
    });

  program.command("get")
    .description("show lane groups")
    .argument("<kind>", "lanegroups (or lanegroup, lg)")
    .argument("[name]", "one group")
    .action(async (kind: string, name?: string) => {
      if (!["lanegroups", "lanegroup", "lg"].includes(kind)) throw new UsageError(`unknown resource ${JSON.stringify(kind)} (want lanegroups)`);
      const c = client();
      const rows: StoredLaneGroup[] = [];
      if (name) {
        const r = await c.request<StoredLaneGroup>("GET", `/v1/lanegroups/${encodeURIComponent(name)}`);
        if (!structured(r.body)) return;
        rows.push(r.body);
      } else {
        const r = await c.request<{ revision: number; lanegroups: StoredLaneGroup[] }>("GET", "/v1/lanegroups");
        if (!structured(r.body)) return;
        rows.push(...r.body.lanegroups);
        if (!rows.length) { io.out("no lane groups\n"); return; }
      }
      io.out(table(["NAME", "REVISION", "SERVICES", "BASE", "LANES"], rows.map(({ revision, lanegroup: g }) => [
        g.name, revision, g.services.map((s) => s.name).join(","), g.baseLane, lanesCell(g),
      ])));
    });

  program.command("delete")
    .description("delete a lane group")
    .argument("<name>")
    .action(async (name: string) => {
      const r = await client().request<{ revision: number }>("DELETE", `/v1/lanegroups/${encodeURIComponent(name)}`);
      if (structured(r.body)) io.out(`lanegroup/${name} deleted (revision ${r.body.revision})\n`);
    });

  program.command("revisions")
    .description("the revision log, newest first; with N, one revision and its diff")
    .argument("[n]", "one revision")
    .option("--limit <n>", "how many", "50")
    .option("--group <name>", "only revisions that changed this group")
    .action(async (n: string | undefined, o: { limit: string; group?: string }) => {
      const c = client();
      if (n !== undefined) {
        const r = await c.request<Revision>("GET", `/v1/revisions/${encodeURIComponent(n)}`);
        if (!structured(r.body)) return;
        const v = r.body;
        io.out(`revision ${v.revision}  ${v.time}  ${v.actor}  ${v.op}${v.target !== undefined ? ` to ${v.target}` : ""}\n`);
        for (const ch of v.diff) {
          io.out(`  ${ch.action} lanegroup/${ch.group}\n`);
          if (ch.action !== "replace") continue;
          for (const p of ch.patch) {
            const detail = p.op === "replace" ? `${short(p.old)} -> ${short(p.value)}` : p.op === "add" ? short(p.value) : short(p.old);
            io.out(`    ${p.op} ${p.path}: ${detail}\n`);
          }
        }
        return;
      }
      const q = new URLSearchParams({ limit: o.limit });
      if (o.group) q.set("group", o.group);
      const r = await c.request<{ revisions: RevisionSummary[] }>("GET", `/v1/revisions?${q}`);
      if (!structured(r.body)) return;
      if (!r.body.revisions.length) { io.out("no revisions\n"); return; }
      io.out(table(["REVISION", "TIME", "ACTOR", "OP", "GROUPS"], r.body.revisions.map((v) => [
        v.revision, v.time, v.actor, v.op === "rollback" ? `rollback to ${v.target}` : v.op, v.groups.join(",") || "(no change)",
      ])));
    });

  program.command("rollback")
    .description("write a new revision whose content equals revision N's")
    .argument("<n>")
    .action(async (n: string) => {
      if (!/^\d+$/.test(n) || Number(n) < 1) throw new UsageError(`rollback ${n}: want a revision number`);
      const r = await client().request<{ revision: number; target: number; groups: string[] }>("POST", "/v1/rollback", { revision: Number(n) });
      if (structured(r.body)) {
        io.out(`rolled back to revision ${r.body.target}: new revision ${r.body.revision} (changed: ${r.body.groups.join(", ") || "nothing"})\n`);
      }
    });

  program.command("preview")
    .description("the lane the real filter picks at the edge for a request (empty trace memory)")
    .requiredOption("--group <name>", "lane group")
    .requiredOption("--service <name>", "destination service of the group")
    .option("-H, --header <header>", "request header 'name: value' (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--path <path>", "request path", "/")
    .option("--method <method>", "request method", "GET")
    .action(async (o: { group: string; service: string; header: string[]; path: string; method: string }) => {
      const headers = Object.fromEntries(o.header.map(parseHeader));
      const r = await client().request<{ lane: string | null; route: string | null; source: string | null; revision: number }>(
        "POST", "/v1/preview", { group: o.group, service: o.service, request: { method: o.method, path: o.path, headers } });
      if (structured(r.body)) io.out(table(["LANE", "ROUTE", "SOURCE"], [[r.body.lane, r.body.route, r.body.source]]));
    });

  program.command("status")
    .description("connected filters per node and the rule versions they ACKed")
    .action(async () => {
      type Status = RuleServerStatus & { page?: { nodes: number }; summary?: SubscriberSummary; replicas?: Array<SubscriberSummary & { replica: string }> };
      const r = await client().request<Status>("GET", "/v1/status");
      if (!structured(r.body)) return;
      const s = r.body;
      io.out(`serving version ${s.version || "-"} (revision ${s.revision})\n`);
      const counts = (x: SubscriberSummary) => `${x.connected} connected, ${x.atVersion} at this version, ${x.pending} pending, ${x.nacked} NACKed`;
      if (s.replicas) for (const x of s.replicas) io.out(`replica ${x.replica}: ${counts(x)}\n`);
      if (s.summary && (s.replicas || s.summary.connected > 0)) io.out(`${s.replicas ? "all replicas" : "subscribers"}: ${counts(s.summary)}\n`);
      if (s.page && s.page.nodes > s.nodes.length) io.out(`nodes ${s.nodes.length} of ${s.page.nodes} on this replica (GET /v1/status?limit=&offset= for the rest)\n`);
      const rows = s.nodes.flatMap((n) => n.subscribers.map((sub) => [
        n.nodeId, n.version, sub.instanceId, sub.connected ? "yes" : "no", sub.ackedVersion, sub.pendingVersion,
        sub.lastNack ? `${sub.lastNack.version}: ${sub.lastNack.error}` : "",
      ]));
      io.out(rows.length ? table(["NODE", "NODE VERSION", "INSTANCE", "CONNECTED", "ACKED", "PENDING", "LAST NACK"], rows) : "no subscribers\n");
    });

  program.command("traffic")
    .description("per service and lane: requests, observed vs configured share, error rate, p50/p99")
    .requiredOption("--group <name>", "lane group")
    .option("--window <duration>", "like 60s, 5m, 1h", "60s")
    .action(async (o: { group: string; window: string }) => {
      const q = new URLSearchParams({ group: o.group, window: o.window });
      const r = await client().request<TrafficSummary>("GET", `/v1/traffic?${q}`);
      if (!structured(r.body)) return;
      const t = r.body;
      io.out(`lane group ${t.group}, last ${o.window}\n`);
      // The gRPC column only where there is gRPC traffic: an HTTP-only group's table is unchanged.
      const grpc = t.services.some((row) => Object.keys(row.grpcStatuses ?? {}).length > 0);
      io.out(t.services.length
        ? table(["SERVICE", "LANE", "REQUESTS", "OBSERVED", "CONFIGURED", "ERRORS", "P50", "P99", ...(grpc ? ["GRPC"] : [])], t.services.map((row) => [
          row.service, row.lane, row.requests, percent(row.observedShare), percent(row.configuredShare), percent(row.errorRate), ms(row.p50Ms), ms(row.p99Ms),
          ...(grpc ? [grpcStatusesText(row.grpcStatuses ?? {})] : []),
        ]))
        : "no inbound traffic\n");
      if (t.edge.length) io.out("\nat the edge\n" + table(["LANE", "REQUESTS"], t.edge.map((e) => [e.lane, e.requests])));
    });

  program.command("token")
    .description("API tokens").command("create")
    .description("print a new random API token, and the entry a --tokens file keeps for it (its SHA-256 only)")
    .requiredOption("--name <name>", "who uses it: the audit actor of its changes")
    .addOption(new Option("--role <role>", "viewer, operator, admin (API) or node (a filter's credential)").choices([...ROLES, "node"]).default("operator"))
    .option("--namespace <ns>", "for role node: the namespace whose lane groups the filter receives")
    .action((o: { name: string; role: Role | "node"; namespace?: string }) => {
      if (o.namespace && o.role !== "node") throw new UsageError("--namespace is for --role node");
      const { token, entry } = newToken(o.name, o.role, o.namespace);
      io.out(`token: ${token}\n\nadd to the tokens file:\n${stringify({ tokens: [entry] })}`);
    });

  program.command("override")
    .description("override values for testers").command("sign")
    .description("a signed value for groups with overrideTrust: signed (lane.expiry.signature)")
    .requiredOption("--lane <lane>", "the lane it selects")
    .option("--group <group>", "only when several groups have that lane")
    .option("--ttl <duration>", "how long it stays valid (up to 7d)", "1h")
    .action(async (o: { lane: string; group?: string; ttl: string }) => {
      const r = await client().request<{ value: string; expiresAt: string; groups: Array<{ name: string; overrideHeader: string | null; overrideTrust: string }> }>(
        "POST", "/v1/overrides/sign", { lane: o.lane, group: o.group, ttl: o.ttl });
      if (!structured(r.body)) return;
      io.out(`${r.body.value}\n`);
      for (const g of r.body.groups) {
        io.err(`valid until ${r.body.expiresAt} for group ${g.name}: send it as ${g.overrideHeader ?? "(no override header set)"}: <value>` +
          `${g.overrideTrust === "signed" ? "" : ` (note: ${g.name} has overrideTrust ${g.overrideTrust}, so it does not check signatures)`}\n`);
      }
    });

  registerReleaseCommands(program, {
    client, structured, out: io.out, usage: (m) => new UsageError(m), exit: (code) => new Exit(code),
    tty: io.tty ?? false, stdin: io.stdin ?? (() => readFileSync(0, "utf8")),
  });
  registerMeshCommands(program, io, client);

  return program;
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => { process.off("SIGINT", done); process.off("SIGTERM", done); resolve(); };
    process.on("SIGINT", done);
    process.on("SIGTERM", done);
  });
}

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) { // commander printed it: help (0) or a usage error (2)
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0) return 0;
      return 2;
    }
    if (e instanceof Exit) return e.code;
    if (e instanceof ApiError) { io.err(errorLines(e.errors)); return 1; }
    if (e instanceof UsageError || e instanceof ConnectionError) { io.err(`error: ${e.message}\n`); return 2; }
    io.err(`error: ${(e as Error).stack ?? String(e)}\n`);
    return 2;
  }
}

// Run directly: `tsx control-plane/src/cli/main.ts ...`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
