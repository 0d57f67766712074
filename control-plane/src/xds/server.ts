// The rule push server: graylane.v1.RuleDiscovery.StreamRules (xDS-style, state of the world, one
// resource) and graylane.v1.Traffic.Report, on @grpc/grpc-js without proto-loader.
//
// Per stream (one subscriber = one filter root context) the state machine is:
//
//   hello ──first request (node.id, instance_id, version_info)──▶ active ──end/cancel/error──▶ closed
//
// and in `active`:
//   - `has`     the version the subscriber has applied (its version_info at hello, then each ACK);
//   - `sent`    the latest response written {version, nonce, at}; `pending` while it is unanswered.
//   - A request whose response_nonce is not sent.nonce (or that answers an already answered nonce)
//     is stale and ignored.
//   - ACK  = version_info == sent.version and nonce == sent.nonce → has = sent.version.
//   - NACK = error_detail non-empty → has unchanged (the subscriber keeps its previous RuleSet),
//     lastNack recorded (shown by status()) until a later ACK. The NACKed version is not re-sent to
//     this stream; the next different version is.
//   - reconcile(): with want = the snapshot version for the node, push when
//       pending ? want != sent.version : (want != has && want != sent.version)
//     which pushes every new version as soon as it exists (a newer push supersedes an unanswered
//     one: its nonce becomes the latest), gives an up-to-date reconnect nothing, and never loops on
//     a NACKed version.
//
// Pushes are plain call.write()s in one synchronous loop over the streams: nothing awaits a peer.
// A stream whose write buffer is full (write() returned false: a subscriber that does not read) is
// skipped until it drains, then receives only the latest version, so it neither delays the others
// nor accumulates one buffered RuleSet per change.
import { createHash, randomBytes } from "node:crypto";
import type { NodeAuth } from "../auth/nodes.js";
import type { OverrideKey } from "../auth/override.js";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { NodeStatus, RuleServerStatus, RuleSource, RuleStatusSource, SubscriberStatus } from "../contracts.js";
import { reuse } from "../metrics.js";
import type { Node, RuleRequest } from "../generated/graylane/v1/discovery_pb.js";
import { TrafficReportAckSchema, type TrafficReport, type TrafficReportAck } from "../generated/graylane/v1/traffic_pb.js";
import { SnapshotCache, type Snapshot } from "./cache.js";
import {
  ruleDiscoveryServerDefinition,
  trafficDefinition,
  type OutgoingRuleResponse,
} from "./protocol.js";

/** What the Traffic.Report handler needs (implemented by traffic/TrafficIngest). */
export interface TrafficReportSink {
  report(r: TrafficReport): { sequence: bigint };
}

export type RuleServerEvent =
  | { type: "connect"; nodeId: string; instanceId: string; version: string }
  | { type: "disconnect"; nodeId: string; instanceId: string }
  | { type: "push"; nodeId: string; instanceId: string; version: string; nonce: string }
  | { type: "ack"; nodeId: string; instanceId: string; version: string; latencyMs: number }
  | { type: "nack"; nodeId: string; instanceId: string; version: string; error: string }
  | { type: "stale"; nodeId: string; instanceId: string; nonce: string };

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

interface Stream {
  id: number;
  call: grpc.ServerDuplexStream<RuleRequest, OutgoingRuleResponse>;
  state: "hello" | "active" | "closed";
  node?: Node;
  nodeId: string;
  instanceId: string;
  has: string;
  sent?: { version: string; nonce: string; at: number };
  pending: boolean;
  lastNack?: { version: string; error: string; at: string };
  connectedAt: string;
  disconnectedAt?: number;
  /** write() returned false; waiting for 'drain'. */
  blocked: boolean;
  /** The namespace scope of its identity (mTLS certificate or node token), if any. */
  scope?: string;
}

/** The RuleDiscovery service implementation: per-stream state machines over a SnapshotCache. */
export class RuleServer implements RuleStatusSource {
  private readonly streams = new Map<number, Stream>();
  private nextId = 1;
  private nonceSeq = 0;
  /** Nonces are unique per response and across control-plane restarts. */
  private readonly noncePrefix = randomBytes(4).toString("hex");
  private readonly listeners = new Set<(e: RuleServerEvent) => void>();
  private readonly unwatch: () => void;
  private readonly retentionMs: number;
  private readonly keys: { overrideKey?: Uint8Array; overrideKeyPrevious?: Uint8Array };
  private readonly nodeAuth: NodeAuth | undefined;
  readonly metrics: {
    pushAck: Histogram;
    subscribers: Gauge;
    nacks: Counter;
    pushes: Counter;
    stale: Counter;
  };

  constructor(readonly cache: SnapshotCache, opts: RuleServerOptions = {}) {
    this.retentionMs = opts.disconnectedRetentionMs ?? 5 * 60_000;
    this.keys = opts.overrideKey ? { overrideKey: opts.overrideKey.current, overrideKeyPrevious: opts.overrideKey.previous } : {};
    this.nodeAuth = opts.nodeAuth;
    const registry = opts.registry ?? new Registry();
    const registers = [registry];
    this.metrics = {
      pushAck: reuse(registry, "graylane_xds_push_ack_seconds", () => new Histogram({
        name: "graylane_xds_push_ack_seconds",
        help: "Time from writing a RuleResponse to receiving its ACK, per subscriber",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers,
      })),
      subscribers: reuse(registry, "graylane_xds_subscribers", () => new Gauge({ name: "graylane_xds_subscribers", help: "Connected rule stream subscribers", registers })),
      nacks: reuse(registry, "graylane_xds_nacks_total", () => new Counter({ name: "graylane_xds_nacks_total", help: "RuleSets refused (NACKed) by subscribers", registers })),
      pushes: reuse(registry, "graylane_xds_pushes_total", () => new Counter({ name: "graylane_xds_pushes_total", help: "RuleResponses written to subscribers", registers })),
      stale: reuse(registry, "graylane_xds_stale_requests_total", () => new Counter({ name: "graylane_xds_stale_requests_total", help: "Requests ignored because their nonce was not the latest sent", registers })),
    };
    this.unwatch = cache.watch((s) => this.pushAll(s));
  }

  /** grpc-js handler for StreamRules. */
  readonly handleStream = (call: grpc.ServerDuplexStream<RuleRequest, OutgoingRuleResponse>): void => {
    const s: Stream = {
      id: this.nextId++,
      call,
      state: "hello",
      nodeId: "",
      instanceId: "",
      has: "",
      pending: false,
      connectedAt: new Date().toISOString(),
      blocked: false,
    };
    if (this.nodeAuth?.required) {
      const who = this.nodeAuth.identify(call);
      if ("error" in who) {
        call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: who.error } satisfies Partial<grpc.StatusObject>);
        return;
      }
      s.scope = who.namespace;
    }
    this.streams.set(s.id, s);
    call.on("data", (req: RuleRequest) => this.onRequest(s, req));
    call.on("end", () => {
      this.close(s);
      call.end();
    });
    call.on("cancelled", () => this.close(s));
    call.on("error", () => this.close(s));
    call.on("close", () => this.close(s));
  };

  /**
   * Asks every identified, live subscriber for its traffic report now (a RuleResponse with
   * report_now and no RuleSet, which is not ACKed). Returns how many were asked.
   */
  requestReports(): number {
    let n = 0;
    for (const s of this.streams.values()) {
      if (s.state === "hello" || s.blocked) continue;
      s.call.write({ version: "", nonce: "", reportNow: true });
      n++;
    }
    return n;
  }

  onEvent(listener: (e: RuleServerEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): RuleServerStatus {
    const snap = this.cache.current();
    const now = Date.now();
    const byNode = new Map<string, Stream[]>();
    for (const s of this.streams.values()) {
      if (s.state === "hello") continue;
      if (s.state === "closed") {
        if (now - (s.disconnectedAt ?? now) > this.retentionMs) {
          this.streams.delete(s.id);
          continue;
        }
      }
      let list = byNode.get(s.nodeId);
      if (!list) byNode.set(s.nodeId, (list = []));
      list.push(s);
    }
    const nodes: NodeStatus[] = [...byNode.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([nodeId, list]) => {
        const live = list.filter((s) => s.state === "active");
        const versions = new Set(live.map((s) => s.has));
        const version = live.length > 0 && versions.size === 1 ? [...versions][0]! : "";
        const subscribers = list
          .sort((a, b) => (a.instanceId < b.instanceId ? -1 : a.instanceId > b.instanceId ? 1 : a.id - b.id))
          .map((s): SubscriberStatus => {
            const out: SubscriberStatus = {
              nodeId: s.nodeId,
              instanceId: s.instanceId,
              connected: s.state === "active",
              ackedVersion: s.has,
              connectedAt: s.connectedAt,
            };
            if (s.pending && s.sent) out.pendingVersion = s.sent.version;
            if (s.lastNack) out.lastNack = { ...s.lastNack };
            return out;
          });
        return { nodeId, version, subscribers };
      });
    return { version: snap.version, revision: snap.revision, nodes };
  }

  /** Ends every stream (OK status: subscribers reconnect, e.g. to another replica). */
  endAll(): void {
    for (const s of this.streams.values()) {
      if (s.state !== "closed") {
        this.close(s);
        try {
          s.call.end();
        } catch {
          // already gone
        }
      }
    }
  }

  dispose(): void {
    this.unwatch();
    this.listeners.clear();
  }

  private emit(e: RuleServerEvent): void {
    for (const l of this.listeners) l(e);
  }

  private onRequest(s: Stream, req: RuleRequest): void {
    if (s.state === "closed") return;
    if (s.state === "hello") {
      const nodeId = req.node?.id ?? "";
      if (nodeId === "" || req.instanceId === "") {
        this.close(s);
        s.call.emit("error", {
          code: grpc.status.INVALID_ARGUMENT,
          details: "the first RuleRequest of a stream must carry node.id and instance_id",
        } satisfies Partial<grpc.StatusObject>);
        return;
      }
      // One live entry per identity: a reconnect replaces the disconnected entry of the same instance.
      for (const o of this.streams.values()) {
        if (o.state === "closed" && o.nodeId === nodeId && o.instanceId === req.instanceId) this.streams.delete(o.id);
      }
      s.state = "active";
      s.node = req.node;
      s.nodeId = nodeId;
      s.instanceId = req.instanceId;
      s.has = req.versionInfo;
      if (req.errorDetail !== "") {
        s.lastNack = { version: req.versionInfo, error: req.errorDetail, at: new Date().toISOString() };
      }
      this.metrics.subscribers.inc();
      this.emit({ type: "connect", nodeId, instanceId: s.instanceId, version: s.has });
      this.reconcile(s);
      return;
    }

    const sent = s.sent;
    if (!sent || !s.pending || req.responseNonce !== sent.nonce) {
      this.metrics.stale.inc();
      this.emit({ type: "stale", nodeId: s.nodeId, instanceId: s.instanceId, nonce: req.responseNonce });
      return;
    }
    s.pending = false;
    if (req.node) s.node = { ...req.node, id: s.nodeId } as Node; // labels may change; the identity may not
    const error =
      req.errorDetail !== ""
        ? req.errorDetail
        : req.versionInfo !== sent.version
          ? `answered nonce ${sent.nonce} with version ${JSON.stringify(req.versionInfo)}, expected ${sent.version}`
          : "";
    if (error !== "") {
      s.lastNack = { version: sent.version, error, at: new Date().toISOString() };
      this.metrics.nacks.inc();
      this.emit({ type: "nack", nodeId: s.nodeId, instanceId: s.instanceId, version: sent.version, error });
    } else {
      s.has = sent.version;
      s.lastNack = undefined;
      const latencyMs = performance.now() - sent.at;
      this.metrics.pushAck.observe(latencyMs / 1000);
      this.emit({ type: "ack", nodeId: s.nodeId, instanceId: s.instanceId, version: sent.version, latencyMs });
    }
    this.reconcile(s);
  }

  private pushAll(snap: Snapshot): void {
    void snap;
    for (const s of this.streams.values()) if (s.state === "active") this.reconcile(s);
  }

  private reconcile(s: Stream): void {
    if (s.state !== "active" || s.blocked) return; // a blocked stream reconciles on 'drain'
    const snap = this.cache.snapshotFor(s.node, s.scope);
    const want = snap.version;
    const due = s.pending ? want !== s.sent!.version : want !== s.has && want !== s.sent?.version;
    if (due) this.send(s, snap);
  }

  private send(s: Stream, snap: Snapshot): void {
    const nonce = `${this.noncePrefix}-${(++this.nonceSeq).toString(36)}`;
    s.sent = { version: snap.version, nonce, at: performance.now() };
    s.pending = true;
    this.metrics.pushes.inc();
    this.emit({ type: "push", nodeId: s.nodeId, instanceId: s.instanceId, version: snap.version, nonce });
    let ok: boolean;
    try {
      ok = s.call.write({ version: snap.version, nonce, ruleSetBytes: snap.bytes, ...this.keys });
    } catch {
      this.close(s);
      return;
    }
    if (!ok) {
      s.blocked = true;
      s.call.once("drain", () => {
        s.blocked = false;
        this.reconcile(s);
      });
    }
  }

  private close(s: Stream): void {
    if (s.state === "closed") return;
    const wasActive = s.state === "active";
    s.state = "closed";
    s.disconnectedAt = Date.now();
    s.pending = false;
    if (wasActive) {
      this.metrics.subscribers.dec();
      this.emit({ type: "disconnect", nodeId: s.nodeId, instanceId: s.instanceId });
    } else {
      this.streams.delete(s.id);
    }
  }
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
