// The rule push server: graylane.v1.RuleDiscovery.StreamRules and graylane.v1.Traffic.Report on
// @grpc/grpc-js without proto-loader. The rule streams' state machine (versions, nonces, ACK/NACK)
// is RuleStreams (rule-streams.ts); RuleServer adds what is gRPC: subscriber authentication and a
// grpc-js call as a RuleStream.
import { createHash } from "node:crypto";
import type { NodeAuth } from "../auth/nodes.js";
import type { OverrideKey } from "../auth/override.js";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Counter, Registry } from "prom-client";
import type { RuleSource, RuleStatusSource } from "../contracts.js";
import type { RuleRequest } from "../generated/graylane/v1/discovery_pb.js";
import { reuse } from "../metrics.js";
import { TrafficReportAckSchema, type TrafficReport, type TrafficReportAck } from "../generated/graylane/v1/traffic_pb.js";
import { SnapshotCache } from "./cache.js";
import {
  ruleDiscoveryServerDefinition,
  trafficDefinition,
  type OutgoingRuleResponse,
} from "./protocol.js";
import { type RuleServerEvent, type RuleStream, RuleStreams } from "./rule-streams.js";

export type { RuleServerEvent } from "./rule-streams.js";

/** What the Traffic.Report handler needs (implemented by traffic/TrafficIngest). */
export interface TrafficReportSink {
  report(r: TrafficReport): { sequence: bigint };
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

type RuleCall = grpc.ServerDuplexStream<RuleRequest, OutgoingRuleResponse>;

/** A grpc-js StreamRules call as the state machine's RuleStream. */
function grpcRuleStream(call: RuleCall): RuleStream {
  return {
    write: (response) => call.write(response),
    onDrain: (fn) => call.once("drain", fn),
    end: (error) => {
      if (error) call.emit("error", { code: grpc.status[error.code], details: error.details } satisfies Partial<grpc.StatusObject>);
      else call.end();
    },
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

  /** grpc-js handler for StreamRules. */
  readonly handleStream = (call: RuleCall): void => {
    let scope: string | undefined;
    if (this.nodeAuth?.required) {
      const who = this.nodeAuth.identify(call);
      if ("error" in who) {
        call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: who.error } satisfies Partial<grpc.StatusObject>);
        return;
      }
      scope = who.namespace;
    }
    const stream = this.open(grpcRuleStream(call), scope);
    call.on("data", (req: RuleRequest) => stream.request(req));
    call.on("end", () => {
      stream.closed();
      call.end();
    });
    call.on("cancelled", () => stream.closed());
    call.on("error", () => stream.closed());
    call.on("close", () => stream.closed());
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

  const server = new grpc.Server({
    // Notice dead peers so "live subscribers" stays true to its name.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 5_000,
  });
  server.addService(ruleDiscoveryServerDefinition, { StreamRules: rules.handleStream });
  if (opts.traffic) {
    const sink = opts.traffic;
    server.addService(trafficDefinition, {
      Report: (call: grpc.ServerUnaryCall<TrafficReport, TrafficReportAck>, callback: grpc.sendUnaryData<TrafficReportAck>) => {
        let sequence: bigint;
        if (opts.nodeAuth?.required) {
          const who = opts.nodeAuth.identify(call);
          if ("error" in who) {
            reports.inc({ result: "unauthenticated" });
            callback({ code: grpc.status.UNAUTHENTICATED, details: who.error });
            return;
          }
        }
        try {
          sequence = sink.report(call.request).sequence;
        } catch (e) {
          reports.inc({ result: "error" });
          callback({ code: grpc.status.INVALID_ARGUMENT, details: e instanceof Error ? e.message : String(e) });
          return;
        }
        reports.inc({ result: "ok" });
        callback(null, create(TrafficReportAckSchema, { sequence }));
      },
    });
  }

  const credentials = opts.tls
    ? grpc.ServerCredentials.createSsl(opts.tls.clientCa ?? null, [{ cert_chain: opts.tls.cert, private_key: opts.tls.key }], !!opts.tls.clientCa)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${opts.port ?? 7071}`, credentials, (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });

  let closed: Promise<void> | undefined;
  return {
    port,
    cache,
    rules,
    status: () => rules.status(),
    requestReports: () => rules.requestReports(),
    onEvent: (l) => rules.onEvent(l),
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        rules.endAll();
        rules.dispose();
        cache.close();
        const timer = setTimeout(() => server.forceShutdown(), 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      })),
  };
}
