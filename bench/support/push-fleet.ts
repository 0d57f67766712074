// A child process of bench/push-latency: `count` simulated filters, each one HTTP/2 connection (as
// every Envoy worker's gRPC client has) with one StreamRules call, ACKing each RuleResponse at once.
// Cheap on purpose, so 10,000 of them in a few processes do not crowd the control plane off the
// machine's cores: raw node:http2 and the gRPC framing by hand, the hello pre-encoded per filter, an
// ACK encoded once per (version, nonce) and written to every stream that answers it, and a
// response read only as far as its version and nonce (decoding the RuleSet is each real filter's
// own work on its own proxy). The same fleet connects to the floor (push-floor.ts).
// Told {startReports: ms}, each filter also sends a Traffic.Report that often on its connection
// (start times spread over the interval), as Envoy's filters do (support/traffic-reports.ts).
// Parent → child: {target, targets?, first, count, perNode}, {startReports}, "cpu", "stop",
// "stop-reports", "report-stats", "received". Child → parent: {ready}, {error}, {cpu: µs used so
// far}, {stats}, {received}.
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { create } from "@bufbuild/protobuf";
import { RuleRequestSchema } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { serializeRuleRequest, STREAM_RULES_PATH } from "../../control-plane/src/xds/protocol.js";
import { grpcFrame, MessageReader, versionAndNonce } from "./grpc-frames.js";
import { TRAFFIC_REPORT_PATH } from "../../control-plane/src/xds/protocol.js";
import { countersAt, reportBytes } from "./traffic-reports.js";

export interface FleetJob {
  target: string;
  /** Replicas: filter i connects to targets[i % n], and moves to the next one when its stream breaks. */
  targets?: string[];
  first: number;
  count: number;
  perNode: number;
}

/** Per version: how many filters received it and when the last one did (epoch ms, comparable across processes). */
export type Received = Record<string, { count: number; lastAt: number }>;

/** What the reports of one process did: answered, failed, in flight, latencies (ms), Σ of each filter's last answered report number; connections that broke and were made again; reports not sent because the last was unanswered. */
export interface ReportStats { sent: number; answered: number; failed: number; inFlight: number; latenciesMs: number[]; sumOfLast: number; reconnects: number; skipped: number }

/** Connections opened at once while the fleet starts (a burst of 10,000 SYNs overflows the backlog). */
const OPEN_BATCH = 200;

const sessions = new Set<ClientHttp2Session>();
const received: Received = {};
let stopping = false;
/** The ACK for a (version, nonce): the same bytes for every filter that received that response. */
const acks = new Map<string, Buffer>();

function ackFor(version: string, nonce: string): Buffer {
  const key = `${version}\0${nonce}`;
  let b = acks.get(key);
  if (!b) {
    // A filter repeats neither its node nor its instance id in an ACK.
    b = grpcFrame(serializeRuleRequest(create(RuleRequestSchema, { versionInfo: version, responseNonce: nonce })));
    if (acks.size > 64) acks.clear();
    acks.set(key, b);
  }
  return b;
}

function hello(nodeId: string, instanceId: string): Buffer {
  return grpcFrame(serializeRuleRequest(create(RuleRequestSchema, { node: { id: nodeId }, instanceId })));
}

const stats: ReportStats = { sent: 0, answered: 0, failed: 0, inFlight: 0, latenciesMs: [], sumOfLast: 0, reconnects: 0, skipped: 0 };
const reportTimers: NodeJS.Timeout[] = [];
/** Counters of report number s, shared by the filters at s. */
const countersBySeq = new Map<number, Uint8Array>();

/** One simulated filter: its connection (replaced when it breaks), its report numbers. */
class Filter {
  session: ClientHttp2Session | undefined;
  private at: number;
  private seq = 0;
  private lastAnswered = 0;

  constructor(private readonly targets: string[], index: number, readonly nodeId: string, readonly instanceId: string) {
    this.at = index % targets.length;
  }

  /** Connects (to the current target); `onSent` once the hello is written to the socket. */
  open(onSent: () => void): void {
    const session = connect(`http://${this.targets[this.at]}`);
    this.session = session;
    sessions.add(session);
    // A broken connection reconnects after 100 ms, with replicas to the next one (an Envoy cluster
    // of the replicas' endpoints), as Envoy's gRPC client does; reconnects are counted.
    let gone = false;
    const broken = () => {
      if (stopping || gone) return;
      gone = true;
      stats.reconnects++;
      sessions.delete(session);
      session.destroy();
      this.at = (this.at + 1) % this.targets.length;
      setTimeout(() => this.open(() => {}), 100);
    };
    session.on("error", broken);
    session.on("close", broken);
    const stream: ClientHttp2Stream = session.request({ ":method": "POST", ":path": STREAM_RULES_PATH, "content-type": "application/grpc", te: "trailers" });
    const reader = new MessageReader((m) => {
      const { version, nonce } = versionAndNonce(m);
      if (nonce === "") return; // report_now: nothing to ACK
      const r = (received[version] ??= { count: 0, lastAt: 0 });
      r.count++;
      r.lastAt = performance.timeOrigin + performance.now();
      stream.write(ackFor(version, nonce));
    });
    stream.on("data", (chunk: Buffer) => reader.push(chunk));
    stream.on("close", broken); // the stream ended (any status): a new connection and stream
    stream.on("error", broken);
    stream.write(hello(this.nodeId, this.instanceId), () => onSent());
  }

  private inFlight = false;

  /**
   * Sends the next report on the current connection (failed when there is none) — unless the last
   * one is still unanswered: like the filter, one report at a time (a slow control plane gets
   * fewer, each covering more, instead of a growing pile).
   */
  report(): void {
    if (this.inFlight) {
      stats.skipped++;
      return;
    }
    const seq = ++this.seq;
    let counters = countersBySeq.get(seq);
    if (!counters) {
      countersBySeq.set(seq, (counters = countersAt(seq)));
      countersBySeq.delete(seq - 3);
    }
    const session = this.session;
    if (!session || session.destroyed || session.closed) {
      stats.failed++;
      return;
    }
    const t0 = performance.now();
    stats.sent++;
    stats.inFlight++;
    this.inFlight = true;
    const req = session.request({ ":method": "POST", ":path": TRAFFIC_REPORT_PATH, "content-type": "application/grpc", te: "trailers" });
    let status: string | undefined;
    req.on("response", (h) => { if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]); });
    req.on("trailers", (t) => { status = String(t["grpc-status"]); });
    req.on("data", () => {});
    req.on("error", () => {});
    req.on("close", () => {
      stats.inFlight--;
      this.inFlight = false;
      if (status === "0") {
        stats.answered++;
        stats.latenciesMs.push(performance.now() - t0);
        if (seq > this.lastAnswered) { stats.sumOfLast += seq - this.lastAnswered; this.lastAnswered = seq; }
      } else stats.failed++;
    });
    req.end(grpcFrame(reportBytes(this.instanceId, this.nodeId, seq, counters)));
  }
}

const filters: Filter[] = [];

/** Each filter reports every `every` ms from now on, their start times spread over one interval. */
function startReports(every: number): void {
  filters.forEach((f, j) => {
    reportTimers.push(setTimeout(() => {
      f.report();
      reportTimers.push(setInterval(() => f.report(), every));
    }, (j / filters.length) * every));
  });
}

async function start(job: FleetJob): Promise<void> {
  const targets = job.targets ?? [job.target];
  for (let k = 0; k < job.count; k += OPEN_BATCH) {
    const batch: Array<Promise<void>> = [];
    for (let j = k; j < Math.min(job.count, k + OPEN_BATCH); j++) {
      const i = job.first + j;
      const nodeId = `bench-node-${Math.floor(i / job.perNode)}`;
      const f = new Filter(targets, i, nodeId, `${nodeId}/${i}`);
      filters.push(f);
      batch.push(new Promise<void>((r) => f.open(r)));
    }
    await Promise.all(batch);
  }
  process.send!({ type: "ready" });
}

process.on("message", (m: FleetJob | { startReports: number } | "stop" | "cpu" | "stop-reports" | "report-stats" | "received") => {
  if (typeof m === "object" && "startReports" in m) {
    startReports(m.startReports);
    return;
  }
  if (m === "stop-reports") {
    for (const t of reportTimers) clearTimeout(t);
    return;
  }
  if (m === "received") {
    process.send!({ type: "received", received });
    return;
  }
  if (m === "report-stats") {
    process.send!({ type: "stats", stats });
    stats.latenciesMs = [];
    return;
  }
  if (m === "cpu") {
    const u = process.cpuUsage();
    process.send!({ type: "cpu", us: u.user + u.system });
    return;
  }
  if (m === "stop") {
    stopping = true;
    for (const s of sessions) s.destroy();
    setTimeout(() => process.exit(0), 50);
    return;
  }
  start(m as FleetJob).catch((e: Error) => process.send!({ type: "error", message: e.message }));
});
process.on("disconnect", () => process.exit(0));
