// The floor of bench/push-latency: a bare node:http2 server that does only what a push cannot do
// without — answer each StreamRules call with response headers, write one pre-encoded RuleResponse
// (the same bytes to every stream) and read each ACK off the wire (framing only, nothing decoded).
// No gRPC library, no state machine, no status, no metrics: the control plane's cost per
// subscriber is compared with this one's, measured against the same fleet in the same run.
import { createServer, type Http2Server, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { MessageReader } from "./grpc-frames.js";

export interface Floor {
  port: number;
  /** Streams that sent their hello. */
  streams(): number;
  /** Writes `frame` to every stream; resolves with performance.now() of the last ACK once all answered. */
  push(frame: Buffer): Promise<number>;
  close(): Promise<void>;
}

export async function startFloor(): Promise<Floor> {
  const live = new Set<ServerHttp2Stream>();
  let waiting = 0;
  let done: ((at: number) => void) | undefined;
  const server: Http2Server = createServer();
  server.on("stream", (stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" });
    let hello = true;
    const reader = new MessageReader(() => {
      if (hello) { hello = false; live.add(stream); return; }
      if (done && --waiting === 0) { const d = done; done = undefined; d(performance.now()); }
    });
    stream.on("data", (c: Buffer) => reader.push(c));
    stream.on("close", () => live.delete(stream));
    stream.on("error", () => live.delete(stream));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    streams: () => live.size,
    push: (frame) => new Promise<number>((resolve) => {
      waiting = live.size;
      done = resolve;
      for (const s of live) s.write(frame);
    }),
    close: () => new Promise<void>((r) => {
      for (const s of live) s.close();
      server.close(() => r());
    }),
  };
}
