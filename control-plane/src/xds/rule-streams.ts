// The rule streams' state machine (xDS-style, state of the world, one resource), on a stream
// interface: the gRPC adapter (server.ts) wraps grpc-js calls in it, tests an in-memory stream.
// It holds no gRPC or network code; snapshots come from the cache, which it never changes.
//
// Per stream (one subscriber = one filter root context):
//
//   hello ──first request (node.id, instance_id, version_info)──▶ active ──end/cancel/error──▶ closed
//
// and in `active`:
//   - `has`     the version the subscriber has applied (its version_info at hello, then each ACK);
//   - `sent`    the latest response written {version, nonce, at}; `pending` while it is unanswered.
//   - One response per snapshot, encoded and framed once and written to every stream as the same
//     bytes: its nonce is the snapshot's. A stream never receives one snapshot twice (see
//     reconcile), so each push on a stream still has a nonce of its own.
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
// Pushes are plain write()s in one synchronous loop over the streams: nothing awaits a peer.
// A stream whose write buffer is full (write() returned false: a subscriber that does not read) is
// skipped until it drains, then receives only the latest version, so it neither delays the others
// nor accumulates one buffered RuleSet per change.
import { randomBytes } from "node:crypto";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { reuse } from "../metrics.js";
import type { NodeStatus, RuleServerStatus, RuleStatusSource, SubscriberStatus, SubscriberSummary } from "../contracts.js";
import type { Node, RuleRequest } from "../generated/graylane/v1/discovery_pb.js";
import type { Snapshot, SnapshotCache } from "./cache.js";
import { pushMessage, type OutgoingRuleResponse, type PushMessage } from "./protocol.js";

/** Asks for a traffic report now: no RuleSet, not ACKed. */
const REPORT_NOW = pushMessage({ version: "", nonce: "", reportNow: true });

/** One subscriber's stream, as the state machine sees it. */
export interface RuleStream {
  /**
   * Writes a response (shared by every stream it goes to: write its `frame`, change nothing).
   * false: the stream's buffer is full (its peer does not read); nothing more is written to it
   * until the onDrain callback. Throwing counts as the stream being gone.
   */
  write(response: PushMessage): boolean;
  /** Calls `fn` once, when the buffer has room again. */
  onDrain(fn: () => void): void;
  /** Ends the stream: OK without an error (the subscriber reconnects), else with that status. */
  end(error?: StreamError): void;
}

export interface StreamError {
  code: "INVALID_ARGUMENT";
  details: string;
}

/** What a stream's adapter reports to the state machine. */
export interface RuleStreamHandle {
  /** A RuleRequest arrived. */
  request(req: RuleRequest): void;
  /** The stream is gone (ended, cancelled, failed); calling it again does nothing. */
  closed(): void;
}

/** The cache as the state machine reads it. */
export type SnapshotSource = Pick<SnapshotCache, "current" | "snapshotFor" | "watch">;

export type RuleServerEvent =
  | { type: "connect"; nodeId: string; instanceId: string; version: string }
  | { type: "disconnect"; nodeId: string; instanceId: string }
  | { type: "push"; nodeId: string; instanceId: string; version: string; nonce: string }
  | { type: "ack"; nodeId: string; instanceId: string; version: string; latencyMs: number }
  | { type: "nack"; nodeId: string; instanceId: string; version: string; error: string }
  | { type: "stale"; nodeId: string; instanceId: string; nonce: string };

export interface RuleStreamsOptions {
  /** Metrics are registered here (a private registry when omitted). */
  registry?: Registry;
  /** How long a disconnected subscriber stays visible in status() (default 5 minutes). */
  disconnectedRetentionMs?: number;
  /** Fields sent with every RuleSet (the signed-override keys). */
  responseExtras?: Pick<OutgoingRuleResponse, "overrideKey" | "overrideKeyPrevious">;
  /** Wall clock in ms for status times and retention (default Date.now). */
  now?: () => number;
}

interface Subscriber {
  id: number;
  stream: RuleStream;
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
  /** write() returned false; waiting for the drain. */
  blocked: boolean;
  /** The namespace scope of its identity (mTLS certificate or node token), if any. */
  scope?: string;
}

/** Per-stream state machines over a snapshot cache. */
export class RuleStreams implements RuleStatusSource {
  private readonly subscribers = new Map<number, Subscriber>();
  private nextId = 1;
  private nonceSeq = 0;
  /** Nonces are unique per response and across control-plane restarts. */
  private readonly noncePrefix = randomBytes(4).toString("hex");
  private readonly listeners = new Set<(e: RuleServerEvent) => void>();
  private readonly unwatch: () => void;
  private readonly retentionMs: number;
  private readonly extras: RuleStreamsOptions["responseExtras"];
  private readonly now: () => number;
  /** Each snapshot's response (its nonce, its encoding), made when first pushed. */
  private readonly messages = new WeakMap<Snapshot, PushMessage>();
  readonly metrics: {
    pushAck: Histogram;
    subscribers: Gauge;
    nacks: Counter;
    pushes: Counter;
    stale: Counter;
  };

  constructor(readonly cache: SnapshotSource, opts: RuleStreamsOptions = {}) {
    this.retentionMs = opts.disconnectedRetentionMs ?? 5 * 60_000;
    this.extras = opts.responseExtras ?? {};
    this.now = opts.now ?? Date.now;
    // reuse: a control plane started again in one process on the same registry (tests, the demo).
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

  /** A new stream, waiting for its first request; `scope` is its identity's namespace, if any. */
  open(stream: RuleStream, scope?: string): RuleStreamHandle {
    const s: Subscriber = {
      id: this.nextId++,
      stream,
      state: "hello",
      nodeId: "",
      instanceId: "",
      has: "",
      pending: false,
      connectedAt: new Date(this.now()).toISOString(),
      blocked: false,
      scope,
    };
    this.subscribers.set(s.id, s);
    return { request: (req) => this.onRequest(s, req), closed: () => this.close(s) };
  }

  /**
   * Asks every identified, live subscriber for its traffic report now (a RuleResponse with
   * report_now and no RuleSet, which is not ACKed). Returns how many were asked.
   */
  requestReports(): number {
    let n = 0;
    for (const s of this.subscribers.values()) {
      if (s.state !== "active" || s.blocked) continue;
      s.stream.write(REPORT_NOW);
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
    const now = this.now();
    const byNode = new Map<string, Subscriber[]>();
    for (const s of this.subscribers.values()) {
      if (s.state === "hello") continue;
      if (s.state === "closed") {
        if (now - (s.disconnectedAt ?? now) > this.retentionMs) {
          this.subscribers.delete(s.id);
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

  summary(): SubscriberSummary {
    const out: SubscriberSummary = { connected: 0, atVersion: 0, pending: 0, nacked: 0, byVersion: {} };
    for (const s of this.subscribers.values()) {
      if (s.state !== "active") continue;
      out.connected++;
      if (s.has === this.cache.snapshotFor(s.node, s.scope).version) out.atVersion++; // its scope's version
      if (s.pending) out.pending++;
      if (s.lastNack) out.nacked++;
      out.byVersion[s.has] = (out.byVersion[s.has] ?? 0) + 1;
    }
    return out;
  }

  /** Ends every stream (OK status: subscribers reconnect, e.g. to another replica). */
  endAll(): void {
    for (const s of this.subscribers.values()) {
      if (s.state !== "closed") {
        this.close(s);
        try {
          s.stream.end();
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

  /** Events are built only when someone listens (a push to 10,000 streams makes 10,000 of them). */
  private get listened(): boolean {
    return this.listeners.size > 0;
  }

  private emit(e: RuleServerEvent): void {
    for (const l of this.listeners) l(e);
  }

  private messageFor(snap: Snapshot): PushMessage {
    let m = this.messages.get(snap);
    if (!m) {
      const nonce = `${this.noncePrefix}-${(++this.nonceSeq).toString(36)}`;
      m = pushMessage({ version: snap.version, nonce, ruleSetBytes: snap.bytes, ...this.extras });
      this.messages.set(snap, m);
    }
    return m;
  }

  private onRequest(s: Subscriber, req: RuleRequest): void {
    if (s.state === "closed") return;
    if (s.state === "hello") {
      const nodeId = req.node?.id ?? "";
      if (nodeId === "" || req.instanceId === "") {
        this.close(s);
        s.stream.end({ code: "INVALID_ARGUMENT", details: "the first RuleRequest of a stream must carry node.id and instance_id" });
        return;
      }
      // One live entry per identity: a reconnect replaces the disconnected entry of the same instance.
      for (const o of this.subscribers.values()) {
        if (o.state === "closed" && o.nodeId === nodeId && o.instanceId === req.instanceId) this.subscribers.delete(o.id);
      }
      s.state = "active";
      s.node = req.node;
      s.nodeId = nodeId;
      s.instanceId = req.instanceId;
      s.has = req.versionInfo;
      if (req.errorDetail !== "") {
        s.lastNack = { version: req.versionInfo, error: req.errorDetail, at: new Date(this.now()).toISOString() };
      }
      this.metrics.subscribers.inc();
      this.emit({ type: "connect", nodeId, instanceId: s.instanceId, version: s.has });
      this.reconcile(s);
      return;
    }

    const sent = s.sent;
    if (!sent || !s.pending || req.responseNonce !== sent.nonce) {
      this.metrics.stale.inc();
      if (this.listened) this.emit({ type: "stale", nodeId: s.nodeId, instanceId: s.instanceId, nonce: req.responseNonce });
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
      s.lastNack = { version: sent.version, error, at: new Date(this.now()).toISOString() };
      this.metrics.nacks.inc();
      if (this.listened) this.emit({ type: "nack", nodeId: s.nodeId, instanceId: s.instanceId, version: sent.version, error });
    } else {
      s.has = sent.version;
      s.lastNack = undefined;
      const latencyMs = performance.now() - sent.at;
      this.metrics.pushAck.observe(latencyMs / 1000);
      if (this.listened) this.emit({ type: "ack", nodeId: s.nodeId, instanceId: s.instanceId, version: sent.version, latencyMs });
    }
    this.reconcile(s);
  }

  private pushAll(snap: Snapshot): void {
    void snap;
    for (const s of this.subscribers.values()) if (s.state === "active") this.reconcile(s);
  }

  private reconcile(s: Subscriber): void {
    if (s.state !== "active" || s.blocked) return; // a blocked stream reconciles on drain
    const snap = this.cache.snapshotFor(s.node, s.scope);
    const want = snap.version;
    const due = s.pending ? want !== s.sent!.version : want !== s.has && want !== s.sent?.version;
    if (due) this.send(s, snap);
  }

  private send(s: Subscriber, snap: Snapshot): void {
    const message = this.messageFor(snap);
    s.sent = { version: message.version, nonce: message.nonce, at: performance.now() };
    s.pending = true;
    this.metrics.pushes.inc();
    if (this.listened) this.emit({ type: "push", nodeId: s.nodeId, instanceId: s.instanceId, version: message.version, nonce: message.nonce });
    let ok: boolean;
    try {
      ok = s.stream.write(message);
    } catch {
      this.close(s);
      return;
    }
    if (!ok) {
      s.blocked = true;
      s.stream.onDrain(() => {
        s.blocked = false;
        this.reconcile(s);
      });
    }
  }

  private close(s: Subscriber): void {
    if (s.state === "closed") return;
    const wasActive = s.state === "active";
    s.state = "closed";
    s.disconnectedAt = this.now();
    s.pending = false;
    if (wasActive) {
      this.metrics.subscribers.dec();
      this.emit({ type: "disconnect", nodeId: s.nodeId, instanceId: s.instanceId });
    } else {
      this.subscribers.delete(s.id);
    }
  }
}
