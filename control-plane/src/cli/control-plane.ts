// The whole control plane for `graylane serve`: the REST server's `extend` hook starts the gRPC rule
// push and traffic ingestion on the same store, so a committed revision is pushed at once and
// /v1/status and /v1/traffic read what the gRPC side sees.
import Database from "better-sqlite3";
import { SqliteStore } from "../store/index.js";
import { TrafficIngest } from "../traffic/index.js";
import { startGrpcServer } from "../xds/index.js";
import { ReleaseEngine, releaseOpenApi, releaseRoutes, SqliteReleaseStore, type EngineOptions } from "../rollout/index.js";
import type { Extension, ExtensionContext } from "./server.js";

export const DEFAULT_GRPC_PORT = 7071;

export function controlPlaneExtension(opts: {
  host?: string;
  port?: number;
  /** TEST-ONLY HOOK: RuleSet.required_features of every pushed snapshot (to provoke a NACK). */
  requiredFeatures?: string[];
  /** Release engine timing (tests shorten them). */
  rollout?: Pick<EngineOptions, "tickMs" | "reportSettleMs" | "log">;
} = {}) {
  return async ({ store, registry, app }: ExtensionContext): Promise<Extension & { grpcPort: number; releases: ReleaseEngine }> => {
    // Traffic rollups live in the store's SQLite file (one transaction per report); any other
    // store gets an in-memory database for them.
    const own = store instanceof SqliteStore ? undefined : new Database(":memory:");
    const db = store instanceof SqliteStore ? store.database : own!;
    const traffic = new TrafficIngest({ db, rules: store });
    const grpc = await startGrpcServer({ host: opts.host ?? "127.0.0.1", port: opts.port ?? DEFAULT_GRPC_PORT, rules: store, traffic, registry, requiredFeatures: opts.requiredFeatures });
    // Releases live in the same database; the engine moves weights through the store, so every
    // change is a revision pushed like any other.
    const releases = new ReleaseEngine({
      store, releases: new SqliteReleaseStore(db), traffic, requestReports: () => grpc.requestReports?.() ?? 0, ...opts.rollout,
    });
    app.use(releaseRoutes(releases, { store, traffic }));
    releases.start();
    return {
      rules: grpc,
      traffic,
      grpcPort: grpc.port,
      releases,
      openapi: releaseOpenApi,
      close: async () => {
        await releases.stop();
        await grpc.close();
        own?.close();
      },
    };
  };
}
