// The floor of bench/push-latency, in a child process of its own (so its CPU and memory are its
// own, not mixed with the control plane's): a bare node:http2 server that does only what a push
// cannot do without — answer each StreamRules call with response headers, write one pre-encoded
// RuleResponse (the same bytes to every stream) and read each ACK off the wire (framing only,
// nothing decoded). No gRPC library, no state machine, no status, no metrics.
// Parent → child: {type: "start"}, {type: "push", frame}, {type: "measure"}, "stop".
// Child → parent: {type: "port", port}, {type: "pushed", ms}, {type: "measured", cpuUs, rss, streams}.
import { createServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { rssAfterGc } from "./gc.js";
import { MessageReader } from "./grpc-frames.js";

const live = new Set<ServerHttp2Stream>();
let waiting = 0;
let pushedAt = 0;
const server = createServer();
server.on("stream", (stream) => {
  stream.respond({ ":status": 200, "content-type": "application/grpc" });
  let hello = true;
  const reader = new MessageReader(() => {
    if (hello) { hello = false; live.add(stream); return; }
    if (waiting > 0 && --waiting === 0) process.send!({ type: "pushed", ms: performance.now() - pushedAt });
  });
  stream.on("data", (c: Buffer) => reader.push(c));
  stream.on("close", () => live.delete(stream));
  stream.on("error", () => live.delete(stream));
});

process.on("message", (m: { type: string; frame?: Buffer } | "stop") => {
  if (m === "stop") { server.close(); process.exit(0); }
  if (m.type === "start") server.listen(0, "127.0.0.1", () => process.send!({ type: "port", port: (server.address() as AddressInfo).port }));
  else if (m.type === "push") {
    const frame = Buffer.from(m.frame!);
    waiting = live.size;
    pushedAt = performance.now();
    for (const s of live) s.write(frame);
  } else if (m.type === "measure") {
    const rss = rssAfterGc();
    const u = process.cpuUsage();
    process.send!({ type: "measured", cpuUs: u.user + u.system, rss, streams: live.size });
  }
});
process.on("disconnect", () => process.exit(0));
