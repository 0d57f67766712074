// The rule push server: graylane.v1.RuleDiscovery.StreamRules and graylane.v1.Traffic.Report on
// the control plane's own gRPC server over node:http2 (grpc-server.ts; why not grpc-js's, it says).
// The rule streams' state machine (versions, nonces, ACK/NACK) is RuleStreams (rule-streams.ts);
// RuleServer adds what is gRPC: subscriber authentication and a call as a RuleStream.
import { createHash } from "node:crypto";
import type { NodeAuth } from "../auth/nodes.js";
import type { OverrideKey } from "../auth/override.js";
import { create, toBinary } from "@bufbuild/protobuf";
import { Counter, Registry } from "prom-client";
import type { RuleSource, RuleStatusSource } from "../contracts.js";
import { reuse } from "../metrics.js";
import { TrafficReportAckSchema } from "../generated/graylane/v1/traffic_pb.js";
import { SnapshotCache } from "./cache.js";
import { type BidiCall, GrpcError, startGrpcHttp2Server } from "./grpc-server.js";
import { Status } from "./grpc-wire.js";
import { deserializeRuleRequest, STREAM_RULES_PATH, TRAFFIC_REPORT_PATH } from "./protocol.js";
import { type RuleServerEvent, type RuleStream, RuleStreams } from "./rule-streams.js";

export type { RuleServerEvent } from "./rule-streams.js";

/**
 * What the Traffic.Report handler needs (traffic/TrafficIngest, or a replica's relay in front of
 * it): a report's bytes as the filter sent them, answered once it is stored. Throws (or rejects)
 * when the report does not decode or lacks its instance id.
 */
export interface TrafficReportSink {
  submit(report: Uint8Array): Promise<{ sequence: bigint }>;
}

export interface RuleServerOptions {
  /** Metrics are registered here (a private registry when omitted). */
  registry?: Registry;
  /** How long a disconnected subscriber stays visible in status() (default 5 minutes). */
  disconnectedRetentionMs?: number;
  /** Signed-override keys, sent with every RuleSet. */
  overrideKey?: OverrideKey;
  /** Subscriber authentication (mTLS certificates, node tokens). */
  nodeAuth?: NodeAuth;
}

/** A short fingerprint of the keys, mixed into snapshot versions (never the keys themselves). */
export function keyFingerprint(k: OverrideKey): string {
  const h = createHash("sha256").update("graylane override key\0").update(k.current).update(k.previous ?? new Uint8Array()).digest("hex");
  return `-k${h.slice(0, 8)}`;
}

/** A StreamRules call as the state machine's RuleStream. */
function callRuleStream(call: BidiCall): RuleStream {
  return {
    write: (response) => call.write(response.frame),
    onDrain: (fn) => call.onDrain(fn),
    end: (error) => call.end(error && new GrpcError(Status[error.code], error.details)),
  };
}

/** The RuleDiscovery service: RuleStreams over a SnapshotCache, fed by grpc-js calls. */
export class RuleServer extends RuleStreams {
  declare readonly cache: SnapshotCache;
  private readonly nodeAuth: NodeAuth | undefined;

  constructor(cache: SnapshotCache, opts: RuleServerOptions = {}) {
    super(cache, {
      registry: opts.registry,
      disconnectedRetentionMs: opts.disconnectedRetentionMs,
      responseExtras: opts.overrideKey ? { overrideKey: opts.overrideKey.current, overrideKeyPrevious: opts.overrideKey.previous } : {},
    });
    this.nodeAuth = opts.nodeAuth;
  }

  /** The StreamRules handler. */
  readonly handleStream = (call: BidiCall): void => {
    let scope: string | undefined;
    if (this.nodeAuth?.required) {
      const who = this.nodeAuth.identify(call);
      if ("error" in who) {
        call.end(new GrpcError(Status.UNAUTHENTICATED, who.error));
        return;
      }
      scope = who.namespace;
    }
    const stream = this.open(callRuleStream(call), scope);
    call.onMessage((m) => {
      let req;
      try {
        req = deserializeRuleRequest(m);
      } catch (e) {
        stream.closed();
        call.end(new GrpcError(Status.INVALID_ARGUMENT, `RuleRequest: ${e instanceof Error ? e.message : String(e)}`));
        return;
      }
      stream.request(req);
    });
    call.onHalfClose(() => {
      stream.closed();
      call.end();
    });
    call.onClose(() => stream.closed());
  };
}

export interface StartGrpcServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7071; 0 picks an ephemeral port. */
  port?: number;
  rules: RuleSource;
  /** Traffic.Report handler; the Traffic service is not served without it. */
  traffic?: TrafficReportSink;
  registry?: Registry;
  /** RuleSet.required_features of every snapshot. */
  requiredFeatures?: string[];
  disconnectedRetentionMs?: number;
  /** Signed-override keys, sent with every RuleSet (and fingerprinted into every version). */
  overrideKey?: OverrideKey;
  /** TLS from certificate files; with `clientCa`, subscribers must present a certificate it signed (mTLS). */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Subscriber authentication; built from `tls.clientCa` and node tokens by the control plane. */
  nodeAuth?: NodeAuth;
}

export interface GrpcServerHandle extends RuleStatusSource {
  /** The bound port. */
  port: number;
  /** The snapshot cache (current version, last compile error). */
  cache: SnapshotCache;
  rules: RuleServer;
  /** Push / ACK / NACK / connect events (for tests, logs, live status). */
  onEvent(listener: (e: RuleServerEvent) => void): () => void;
  close(): Promise<void>;
}

export async function startGrpcServer(opts: StartGrpcServerOptions): Promise<GrpcServerHandle> {
  const host = opts.host ?? "127.0.0.1";
  const cache = new SnapshotCache(opts.rules, { requiredFeatures: opts.requiredFeatures, versionSuffix: opts.overrideKey && keyFingerprint(opts.overrideKey) });
  const registry = opts.registry ?? new Registry();
  const rules = new RuleServer(cache, { registry, disconnectedRetentionMs: opts.disconnectedRetentionMs, overrideKey: opts.overrideKey, nodeAuth: opts.nodeAuth });
  const reports = reuse(registry, "graylane_traffic_reports_total", () => new Counter({
    name: "graylane_traffic_reports_total",
    help: "Traffic reports received, by result",
    labelNames: ["result"] as const,
    registers: [registry],
  }));

  const server = await startGrpcHttp2Server(
    {
      host,
      port: opts.port ?? 7071,
      tls: opts.tls,
      // Notice dead peers so "live subscribers" stays true to its name.
      keepalive: { timeMs: 30_000, timeoutMs: 10_000 },
    },
    {
      [STREAM_RULES_PATH]: { kind: "bidi", handle: rules.handleStream },
      ...(opts.traffic && {
        [TRAFFIC_REPORT_PATH]: {
          kind: "unary" as const,
          handle: (peer, request) => {
            if (opts.nodeAuth?.required) {
              const who = opts.nodeAuth.identify(peer);
              if ("error" in who) {
                reports.inc({ result: "unauthenticated" });
                throw new GrpcError(Status.UNAUTHENTICATED, who.error);
              }
            }
            let stored: Promise<{ sequence: bigint }>;
            try {
              stored = opts.traffic!.submit(request); // throws at once on a report that does not decode
            } catch (e) {
              reports.inc({ result: "error" });
              throw new GrpcError(Status.INVALID_ARGUMENT, e instanceof Error ? e.message : String(e));
            }
            return stored.then(
              ({ sequence }) => {
                reports.inc({ result: "ok" });
                return toBinary(TrafficReportAckSchema, create(TrafficReportAckSchema, { sequence }));
              },
              (e: unknown) => {
                reports.inc({ result: "error" });
                throw new GrpcError(Status.UNAVAILABLE, `the report was not stored: ${e instanceof Error ? e.message : String(e)}`);
              },
            );
          },
        },
      }),
    },
  );
  const port = server.port;

  let closed: Promise<void> | undefined;
  return {
    port,
    cache,
    rules,
    status: () => rules.status(),
    summary: () => rules.summary(),
    requestReports: () => rules.requestReports(),
    onEvent: (l) => rules.onEvent(l),
    close: () =>
      (closed ??= (async () => {
        rules.endAll();
        rules.dispose();
        cache.close();
        await server.close(2_000);
      })()),
  };
}
