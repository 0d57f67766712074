// A child process of bench/push-latency: `count` rule-stream subscribers (grpc-js, one HTTP/2
// connection each), every one ACKing each RuleResponse at once, as a filter does. They read only
// the response's version and nonce: decoding the RuleSet is each filter's own work on its own
// proxy's CPU (the real Envoy in the run does it), and here it would only make 1,000 simulated
// filters compete with the control plane for this machine's cores.
// Parent → child: {target, first, count, perNode}, "cpu", "stop". Child → parent: {ready}, {error},
// {cpu: µs used so far}.
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { RuleRequestSchema, type RuleRequest, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { STREAM_RULES_PATH, serializeRuleRequest } from "../../control-plane/src/xds/protocol.js";

export interface SubscriberJob { target: string; first: number; count: number; perNode: number }

type Pushed = Pick<RuleResponse, "version" | "nonce">;
const clients: GraylaneClient[] = [];
const streams: Array<ClientDuplexStream<RuleRequest, Pushed>> = [];

/** Fields 1 (version) and 2 (nonce) of a RuleResponse; every other field skipped unread. */
export function versionAndNonce(b: Buffer): Pushed {
  let i = 0;
  let version = "";
  let nonce = "";
  const varint = () => {
    let v = 0;
    let shift = 0;
    let x: number;
    do { x = b[i++]; v += (x & 0x7f) * 2 ** shift; shift += 7; } while (x & 0x80);
    return v;
  };
  while (i < b.length) {
    const tag = varint();
    const wire = tag & 7;
    if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = varint();
      if (tag >>> 3 === 1) version = b.toString("utf8", i, i + len);
      else if (tag >>> 3 === 2) nonce = b.toString("utf8", i, i + len);
      i += len;
    } else throw new Error(`RuleResponse: wire type ${wire}`);
  }
  return { version, nonce };
}
let stopping = false;

function start(job: SubscriberJob): void {
  let answered = 0;
  for (let k = 0; k < job.count; k++) {
    const i = job.first + k;
    const nodeId = `bench-node-${Math.floor(i / job.perNode)}`;
    const instanceId = `${nodeId}/${i}`;
    const client = new GraylaneClient(job.target, { "grpc.use_local_subchannel_pool": 1 });
    const stream = client.makeBidiStreamRequest(STREAM_RULES_PATH, serializeRuleRequest, versionAndNonce);
    let first = true;
    stream.on("data", (r: Pushed) => {
      stream.write(create(RuleRequestSchema, { instanceId, versionInfo: r.version, responseNonce: r.nonce }));
      if (first) {
        first = false;
        if (++answered === job.count) process.send!({ type: "ready" });
      }
    });
    stream.on("error", (e: Error) => { if (!stopping) process.send!({ type: "error", message: `${instanceId}: ${e.message}` }); });
    stream.write(create(RuleRequestSchema, { node: { id: nodeId }, instanceId }));
    clients.push(client);
    streams.push(stream);
  }
}

process.on("message", (m: SubscriberJob | "stop" | "cpu") => {
  if (m === "cpu") {
    const u = process.cpuUsage();
    process.send!({ type: "cpu", us: u.user + u.system });
    return;
  }
  if (m === "stop") {
    stopping = true;
    for (const s of streams) s.cancel();
    for (const c of clients) c.close();
    setTimeout(() => process.exit(0), 50);
    return;
  }
  start(m);
});
process.on("disconnect", () => process.exit(0));
