// startControlPlane(): the one composition root. The store, traffic ingestion, the gRPC rule push
// and traffic reports, the release engine (with replicas: the leader election and the traffic
// relay) and the REST API, started in that order on one store, so a committed revision is pushed at
// once and /v1/status and /v1/traffic read what the gRPC side sees; closed in the reverse order.
// `graylane serve`, the demo, the tests and the benchmarks all start it here.
import { Registry } from "prom-client";
import { admissionHandler, restValidators } from "../api/admission.js";
import { createApi } from "../api/app.js";
import { requireTokensBeyondLoopback } from "../api/auth.js";
import { NodeAuth } from "../auth/nodes.js";
import type { OverrideKey } from "../auth/override.js";
import type { Tokens } from "../auth/tokens.js";
import { Leadership, type LeaderElection } from "../replicas/leader.js";
import { KubeLeadership } from "../replicas/kube-leader.js";
import { TrafficForwarder } from "../replicas/traffic-forward.js";
import { TrafficRelay } from "../replicas/traffic-relay.js";
import { StatusBoard } from "../replicas/status-board.js";
import { ReleaseEngine, type EngineOptions } from "../rollout/engine.js";
import { ReleaseOverlayRules } from "../rollout/overlay.js";
import { KubeReleaseStore } from "../replicas/kube-release-store.js";
import { DEFAULT_STORE, KubernetesStore, openStore, type Store } from "../store/index.js";
import { DiscoveredRules } from "../controller/discovered-rules.js";
import { MeshController, type MeshControllerOptions } from "../controller/mesh-controller.js";
import { WorkloadDiscovery } from "../controller/discovery.js";
import { KubeClient } from "../controller/kube-client.js";
import { SyncedStatus } from "../controller/synced.js";
import { TrafficIngest } from "../traffic/index.js";
import { startGrpcServer, type GrpcServerHandle } from "../xds/index.js";
import { listenHttp } from "./http.js";
import { openSideStores } from "./storage.js";

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 7070;
export const DEFAULT_GRPC_PORT = 7071;

export interface ControlPlaneOptions {
  /** REST and gRPC listen address (default 127.0.0.1). */
  host?: string;
  /** REST port (default 7070; 0: an ephemeral port). */
  port?: number;
  /** gRPC port (default 7071; 0: an ephemeral port). */
  grpcPort?: number;
  /** A Store (left open on close), or a --store spec (sqlite:PATH, :memory:, etcd://HOST:PORT). */
  store?: Store | string;
  /** filter.wasm for /v1/preview. */
  wasmPath?: string;
  /** Metrics of every part; /metrics serves it. */
  registry?: Registry;
  /** API tokens. Required unless `host` is a loopback address. */
  tokens?: Tokens;
  /** Node tokens (role node) that filters may present instead of a certificate. */
  nodeTokens?: Tokens;
  /** HTTPS for the REST API. */
  tls?: { cert: Buffer; key: Buffer };
  /** TLS for the gRPC services; with clientCa, filters must present certificates it signed (mTLS). */
  grpcTls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Key for signed overrides (sent to filters over the rule stream only). */
  overrideKey?: OverrideKey;
  /** Release engine timing (tests shorten them). */
  rollout?: Pick<EngineOptions, "tickMs" | "reportSettleMs" | "log">;
  /** The clock of traffic windows, releases and override expiry (default Date.now; tests). */
  now?: () => number;
  /** The validating admission webhook (LaneGroup and Release objects), HTTPS on its own port of `host` (0: ephemeral). */
  webhook?: { port: number; cert: Buffer; key: Buffer };
  /**
   * With a Kubernetes store: the mesh controller (Istio objects per LaneGroup, workload discovery
   * for autoLanes groups, finalizers). Refused with any other store.
   */
  meshController?: MeshControllerOptions;
  /**
   * With a Kubernetes store and several replicas: the namespace of the coordination.k8s.io Lease that
   * makes one replica active (release engine, mesh controller, Synced status); without it this
   * replica is active on its own.
   */
  lease?: { namespace: string; name?: string; leaseDurationSeconds?: number; retryMs?: number };
  /** Beside a store that is not SQLite: a SQLite file for the traffic counters (default: in memory, lost on restart). */
  trafficDb?: string;
  /** TEST-ONLY HOOK: RuleSet.required_features of every pushed snapshot (to provoke a NACK). */
  requiredFeatures?: string[];
}

export interface ControlPlane {
  /** The REST API's base URL. */
  url: string;
  port: number;
  grpcPort: number;
  store: Store;
  registry: Registry;
  grpc: GrpcServerHandle;
  traffic: TrafficIngest;
  releases: ReleaseEngine;
  /** With `meshController`: the controller (its passes, its last error). */
  meshController?: MeshController;
  /** With `webhook`: its base URL (https://HOST:PORT; the reviews go to /validate). */
  webhookUrl?: string;
  /** With an etcd store, or a Kubernetes store with `lease`: this replica's part in the election of the active replica. */
  leader?: LeaderElection;
  close(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const host = opts.host ?? DEFAULT_HOST;
  requireTokensBeyondLoopback(host, opts.tokens);
  const registry = opts.registry ?? new Registry();
  const closers: Array<() => unknown> = [];
  const closeAll = async () => {
    let first: unknown;
    for (const close of closers.splice(0).reverse()) await Promise.resolve().then(close).catch((e) => { first ??= e; });
    if (first !== undefined) throw first;
  };
  try {
    const store = typeof opts.store === "object" ? opts.store : await openStore(opts.store ?? DEFAULT_STORE);
    if (typeof opts.store !== "object") closers.push(() => store.close());
    const side = await openSideStores(store, { trafficDb: opts.trafficDb });
    closers.push(() => side.close());

    if (opts.meshController && !(store instanceof KubernetesStore)) throw new Error("the mesh controller needs --store kubernetes");
    // What the filters get: the store's groups, with the lanes workload discovery found applied.
    const discovered = opts.meshController ? new DiscoveredRules(store) : undefined;
    if (discovered) closers.push(() => discovered.close());
    // Beside a Kubernetes store, Git owns the specs: releases lay their weights over them instead.
    const overlay = store instanceof KubernetesStore ? new ReleaseOverlayRules(discovered ?? store, side.releases) : undefined;
    if (overlay) closers.push(() => overlay.close());
    const rules = overlay ?? discovered ?? store;
    const traffic = new TrafficIngest({ db: side.db, rules, now: opts.now, baselineUnknownInstances: store instanceof KubernetesStore && !!opts.lease });
    const etcd = side.etcd;
    const relay = etcd ? await TrafficRelay.start(etcd.client, etcd.prefix, traffic) : undefined;
    if (relay) closers.push(() => relay.close());
    // Kubernetes replicas: a follower forwards its filters' reports to the active replica (bound below).
    let elected: LeaderElection | undefined;
    const forwarder = store instanceof KubernetesStore && opts.lease ? new TrafficForwarder(traffic, () => elected?.grpcRoute?.()) : undefined;
    if (forwarder) closers.push(() => forwarder.close());
    const grpc = await startGrpcServer({
      host, port: opts.grpcPort ?? DEFAULT_GRPC_PORT, rules, traffic: relay ?? forwarder ?? traffic, registry,
      requiredFeatures: opts.requiredFeatures, overrideKey: opts.overrideKey, tls: opts.grpcTls,
      nodeAuth: new NodeAuth({ tokens: opts.nodeTokens, clientCertificates: !!opts.grpcTls?.clientCa }),
    });
    closers.push(() => grpc.close());

    // The engine moves weights through the store, so every step is a revision pushed like any other.
    const releases = new ReleaseEngine({
      store, releases: side.releases, traffic, requestReports: () => grpc.requestReports?.() ?? 0, now: opts.now, ...opts.rollout,
      ...(overlay ? { laneSettings: "overlay" as const } : {}),
      ...(side.releases instanceof KubeReleaseStore ? { adopt: () => (side.releases as KubeReleaseStore).pending() } : {}),
    });
    closers.push(() => releases.stop());
    // What needs one writer runs on the active replica only: the release engine and, on Kubernetes,
    // the LaneGroups' Synced status and the mesh controller (a new one per term).
    const kube = store instanceof KubernetesStore ? new KubeClient(store.kubeConfig) : undefined;
    const synced = kube && new SyncedStatus(kube, store, grpc);
    let meshController: MeshController | undefined;
    // Discovery only reads, and every replica serves rule streams: it runs on each of them.
    const discovery = opts.meshController && store instanceof KubernetesStore && discovered
      ? new WorkloadDiscovery(store.kubeConfig, store, discovered, { defaultNamespace: opts.meshController.mesh.namespace, isActive: () => !elected || elected.isLeader, log: opts.meshController.log })
      : undefined;
    if (discovery) closers.push(() => discovery.close());
    const activate = () => {
      releases.start();
      synced?.start();
      if (opts.meshController && store instanceof KubernetesStore && discovered && discovery) {
        meshController = new MeshController(store.kubeConfig, store, discovered, discovery, opts.meshController);
        meshController.start();
      }
    };
    const deactivate = async () => {
      const c = meshController;
      meshController = undefined;
      synced?.stop();
      await Promise.all([releases.stop(), c?.close()]);
    };
    closers.push(deactivate);
    const hooks = { onElected: activate, onDemoted: () => deactivate() };
    const leader = etcd ? new Leadership(etcd.client, etcd.prefix, hooks)
      : kube && opts.lease ? new KubeLeadership(kube, hooks, opts.lease) : undefined;
    if (leader) closers.push(() => leader.close());
    elected = leader;
    discovery?.start();

    // Replicas on etcd: each one's subscribers on a board every replica's /v1/status reads.
    const board = etcd ? await StatusBoard.start(etcd.client, etcd.prefix, () => ({ version: grpc.cache.current().version, ...grpc.rules.summary() })) : undefined;
    if (board) closers.push(() => board.close());

    const api = createApi({
      replicas: board && (() => board.all()),
      store, registry, wasmPath: opts.wasmPath, tokens: opts.tokens, rules: grpc, traffic,
      releases: { engine: releases, leader: leader && (() => leader.route()) }, overrideKey: opts.overrideKey, now: opts.now,
      overlays: overlay && ((group: string) => overlay.of(group)),
      trafficLeader: forwarder && leader && (() => leader.route()),
    });
    closers.push(() => api.dispose());
    const http = await listenHttp(api, host, opts.port ?? DEFAULT_PORT, opts.tls);
    closers.push(() => http.close());
    // The admission webhook runs the checks REST runs, on the same store and engine.
    const webhook = opts.webhook && await listenHttp(admissionHandler(restValidators(store, releases)), host, opts.webhook.port, opts.webhook);
    if (webhook) closers.push(() => webhook.close());
    // Replicas advertise their REST URL to each other: a non-leader forwards release writes there.
    if (leader) await leader.start(http.url, `${host.includes(":") ? `[${host}]` : host}:${grpc.port}`);
    else activate();

    let closing: Promise<void> | undefined;
    return {
      url: http.url, port: http.port, grpcPort: grpc.port, store, registry, grpc, traffic, releases, leader, webhookUrl: webhook?.url,
      get meshController() { return meshController; },
      close: () => (closing ??= closeAll()),
    };
  } catch (e) {
    await closeAll().catch(() => {});
    throw e;
  }
}
