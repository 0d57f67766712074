// A child process of bench/push-latency: `count` simulated filters, each one HTTP/2 connection (as
// every Envoy worker's gRPC client has) with one StreamRules call, ACKing each RuleResponse at once.
// Cheap on purpose, so 10,000 of them in a few processes do not crowd the control plane off the
// machine's cores: raw node:http2 and the gRPC framing by hand, the hello pre-encoded per filter, an
// ACK encoded once per (version, nonce) and written to every stream that answers it, and a
// response read only as far as its version and nonce (decoding the RuleSet is each real filter's
// own work on its own proxy). The same fleet connects to the floor (push-floor.ts).
// With `reportEveryMs`, each filter also sends a Traffic.Report that often on its connection (start
// times spread over the interval), as Envoy's filters do (support/traffic-reports.ts).
// Parent → child: {target, first, count, perNode, reportEveryMs?}, "cpu", "stop", "stop-reports",
// "report-stats". Child → parent: {ready}, {error}, {cpu: µs used so far}, {stats}.
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
  reportEveryMs?: number;
}

/** Per version: how many filters received it and when the last one did (epoch ms, comparable across processes). */
export type Received = Record<string, { count: number; lastAt: number }>;

/** What the reports of one process did: answered, failed, in flight, latencies (ms), Σ of each filter's last answered report number. */
export interface ReportStats { sent: number; answered: number; failed: number; inFlight: number; latenciesMs: number[]; sumOfLast: number }

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

const stats: ReportStats = { sent: 0, answered: 0, failed: 0, inFlight: 0, latenciesMs: [], sumOfLast: 0 };
const reportTimers: NodeJS.Timeout[] = [];
/** Counters of report number s, shared by the filters at s. */
const countersBySeq = new Map<number, Uint8Array>();

/** One report of a filter on its connection; its last answered number goes into stats.sumOfLast. */
function sendReport(session: ClientHttp2Session, instanceId: string, nodeId: string, seq: number, lastAnswered: { s: number }): void {
  let counters = countersBySeq.get(seq);
  if (!counters) {
    countersBySeq.set(seq, (counters = countersAt(seq)));
    countersBySeq.delete(seq - 3);
  }
  if (session.destroyed || session.closed) {
    stats.failed++;
    return;
  }
  const t0 = performance.now();
  stats.sent++;
  stats.inFlight++;
  const req = session.request({ ":method": "POST", ":path": TRAFFIC_REPORT_PATH, "content-type": "application/grpc", te: "trailers" });
  let status: string | undefined;
  req.on("response", (h) => { if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]); });
  req.on("trailers", (t) => { status = String(t["grpc-status"]); });
  req.on("data", () => {});
  req.on("error", () => {});
  req.on("close", () => {
    stats.inFlight--;
    if (status === "0") {
      stats.answered++;
      stats.latenciesMs.push(performance.now() - t0);
      if (seq > lastAnswered.s) { stats.sumOfLast += seq - lastAnswered.s; lastAnswered.s = seq; }
    } else stats.failed++;
  });
  req.end(grpcFrame(reportBytes(instanceId, nodeId, seq, counters)));
}

/** Opens one filter's connection and stream; `onSent` once its hello is written to the socket. */
function open(target: string, nodeId: string, instanceId: string, onSent: () => void, reportEveryMs?: number, offsetMs = 0, failover?: () => void): void {
  const session = connect(`http://${target}`);
  // With replicas a broken connection moves to the next one (an Envoy cluster of the replicas); else it is an error.
  let moved = false;
  const broken = (why: string) => {
    if (stopping) return;
    if (!failover) { process.send!({ type: "error", message: `${instanceId}: ${why}` }); return; }
    if (moved) return;
    moved = true;
    sessions.delete(session);
    session.destroy();
    setTimeout(failover, 100);
  };
  session.on("error", (e) => broken(e.message));
  session.on("close", () => { if (failover) broken("closed"); });
  sessions.add(session);
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
  stream.on("trailers", (t) => { if (t["grpc-status"] !== "0") broken(`grpc-status ${t["grpc-status"]} ${t["grpc-message"] ?? ""}`); });
  stream.on("error", (e) => broken(e.message));
  stream.write(hello(nodeId, instanceId), () => onSent());
  if (reportEveryMs) {
    let seq = 0;
    const last = { s: 0 };
    reportTimers.push(setTimeout(() => {
      sendReport(session, instanceId, nodeId, ++seq, last);
      reportTimers.push(setInterval(() => sendReport(session, instanceId, nodeId, ++seq, last), reportEveryMs));
    }, offsetMs));
  }
}

async function start(job: FleetJob): Promise<void> {
  for (let k = 0; k < job.count; k += OPEN_BATCH) {
    const batch: Array<Promise<void>> = [];
    for (let j = k; j < Math.min(job.count, k + OPEN_BATCH); j++) {
      const i = job.first + j;
      const nodeId = `bench-node-${Math.floor(i / job.perNode)}`;
      const offset = job.reportEveryMs ? (j / job.count) * job.reportEveryMs : 0;
      const targets = job.targets;
      if (!targets) {
        batch.push(new Promise<void>((r) => open(job.target, nodeId, `${nodeId}/${i}`, r, job.reportEveryMs, offset)));
        continue;
      }
      let at = i % targets.length;
      const connectAt = (onSent: () => void) => open(targets[at]!, nodeId, `${nodeId}/${i}`, onSent, job.reportEveryMs, offset, () => {
        at = (at + 1) % targets.length;
        connectAt(() => {});
      });
      batch.push(new Promise<void>((r) => connectAt(r)));
    }
    await Promise.all(batch);
  }
  process.send!({ type: "ready" });
}

process.on("message", (m: FleetJob | "stop" | "cpu" | "stop-reports" | "report-stats" | "received") => {
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
  start(m).catch((e: Error) => process.send!({ type: "error", message: e.message }));
});
process.on("disconnect", () => process.exit(0));
