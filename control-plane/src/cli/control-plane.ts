// The whole control plane for `graylane serve`: the REST server's `extend` hook starts the gRPC rule
// push and traffic ingestion on the same store, so a committed revision is pushed at once and
// /v1/status and /v1/traffic read what the gRPC side sees.
import Database from "better-sqlite3";
import { EtcdStore, SqliteStore } from "../store/index.js";
import { EtcdReleaseStore } from "../replicas/release-store.js";
import { Leadership } from "../replicas/leader.js";
import { TrafficRelay } from "../replicas/traffic-relay.js";
import { TrafficIngest } from "../traffic/index.js";
import { startGrpcServer } from "../xds/index.js";
import type { OverrideKey } from "../auth/override.js";
import { overrideOpenApi, overrideRoutes } from "../api/overrides.js";
import { NodeAuth } from "../auth/nodes.js";
import type { Tokens } from "../auth/tokens.js";
import { ReleaseEngine, SqliteReleaseStore, type EngineOptions } from "../rollout/index.js";
import { releaseOpenApi, releaseRoutes } from "../api/releases.js";
import type { Extension, ExtensionContext } from "./server.js";

export const DEFAULT_GRPC_PORT = 7071;

export function controlPlaneExtension(opts: {
  host?: string;
  port?: number;
  /** TEST-ONLY HOOK: RuleSet.required_features of every pushed snapshot (to provoke a NACK). */
  requiredFeatures?: string[];
  /** TLS for the gRPC services; with clientCa, filters must present certificates it signed (mTLS). */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Node tokens (role node) that filters may present instead of a certificate. */
  nodeTokens?: Tokens;
  /** Key for signed overrides (sent to filters over the rule stream only). */
  overrideKey?: OverrideKey;
  /** Release engine timing (tests shorten them). */
  rollout?: Pick<EngineOptions, "tickMs" | "reportSettleMs" | "log">;
} = {}) {
  return async ({ store, registry, app }: ExtensionContext): Promise<Extension & { grpcPort: number; releases: ReleaseEngine; leader?: Leadership }> => {
    // Traffic rollups live in the store's SQLite file (one transaction per report); any other
    // store gets an in-memory database for them.
    const own = store instanceof SqliteStore ? undefined : new Database(":memory:");
    const db = store instanceof SqliteStore ? store.database : own!;
    const traffic = new TrafficIngest({ db, rules: store });
    // With etcd, replicas share traffic reports, releases and one release-engine leader.
    const etcd = store instanceof EtcdStore ? store : undefined;
    const relay = etcd ? await TrafficRelay.start(etcd.client, etcd.prefix, traffic) : undefined;
    const grpc = await startGrpcServer({ host: opts.host ?? "127.0.0.1", port: opts.port ?? DEFAULT_GRPC_PORT, rules: store, traffic: relay ?? traffic, registry, requiredFeatures: opts.requiredFeatures, overrideKey: opts.overrideKey,
      tls: opts.tls, nodeAuth: new NodeAuth({ tokens: opts.nodeTokens, clientCertificates: !!opts.tls?.clientCa }) });
    // Releases live in the same database; the engine moves weights through the store, so every
    // change is a revision pushed like any other.
    const releaseStore = etcd ? await EtcdReleaseStore.open(etcd.client, etcd.prefix) : new SqliteReleaseStore(db);
    const releases = new ReleaseEngine({
      store, releases: releaseStore, traffic, requestReports: () => grpc.requestReports?.() ?? 0, ...opts.rollout,
    });
    const leader = etcd ? new Leadership(etcd.client, etcd.prefix, { onElected: () => releases.start(), onDemoted: () => void releases.stop() }) : undefined;
    app.use(releaseRoutes(releases, { store, traffic, leader: leader && (() => leader.route()) }));
    app.use(overrideRoutes(opts.overrideKey, store));
    if (!leader) releases.start();
    return {
      rules: grpc,
      traffic,
      grpcPort: grpc.port,
      releases,
      openapi: { ...releaseOpenApi, ...overrideOpenApi },
      listening: (url) => leader?.start(url),
      leader,
      close: async () => {
        await leader?.close();
        await releases.stop();
        await grpc.close();
        await relay?.close();
        if (releaseStore instanceof EtcdReleaseStore) await releaseStore.close();
        own?.close();
      },
    };
  };
}
