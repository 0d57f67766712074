// The control plane's own gRPC server (xds/grpc-server.ts) against grpc-js clients and raw HTTP/2:
// what a client relies on from any gRPC server — statuses for unknown methods, compressed or
// oversized messages, trailers-only errors, a bad RuleRequest refused — and that a peer that stops
// answering pings is dropped.
import { afterEach, describe, expect, it } from "vitest";
import { connect } from "node:http2";
import { connect as netConnect } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { RuleRequestSchema } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { type BidiCall, GrpcError, startGrpcHttp2Server, type GrpcServer } from "../../control-plane/src/xds/grpc-server.js";
import { grpcFrame, MessageReader, Status } from "../../control-plane/src/xds/grpc-wire.js";
import { GraylaneClient, STREAM_RULES_PATH, startGrpcServer } from "../../control-plane/src/xds/index.js";
import { serializeRuleRequest } from "../../control-plane/src/xds/protocol.js";
import { MemoryRuleSource, mockGroup } from "../support/rulesource.js";

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A raw HTTP/2 gRPC call: the response headers, the messages and the trailers. */
function rawCall(port: number, path: string, body: Buffer, extra: Record<string, string> = {}) {
  return new Promise<{ headers: Record<string, unknown>; messages: Buffer[]; trailers: Record<string, unknown> }>((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    cleanup.push(() => session.destroy());
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...extra });
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    const messages: Buffer[] = [];
    const reader = new MessageReader((m) => messages.push(Buffer.from(m)));
    req.on("response", (h) => (headers = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => reader.push(c));
    req.on("end", () => resolve({ headers, messages, trailers }));
    req.on("error", reject);
    req.end(body);
  });
}

/** A server with one bidi echo method and one unary method that answers its request reversed. */
async function echoServer(keepalive?: { timeMs: number; timeoutMs: number }) {
  const closed: string[] = [];
  const server: GrpcServer = await startGrpcHttp2Server({ host: "127.0.0.1", port: 0, keepalive }, {
    "/t.T/Echo": {
      kind: "bidi",
      handle: (call: BidiCall) => {
        call.onMessage((m) => call.write(grpcFrame(m)));
        call.onHalfClose(() => call.end());
        call.onClose(() => closed.push("echo"));
      },
    },
    "/t.T/Reverse": {
      kind: "unary",
      handle: (_peer, req) => {
        if (req.length === 0) throw new GrpcError(Status.INVALID_ARGUMENT, "empty — naïve %");
        return Buffer.from(req).reverse();
      },
    },
  });
  cleanup.push(() => server.close(100));
  return { server, closed };
}

describe("gRPC server on node:http2", () => {
  it("answers a unary call, echoes a stream, and sends errors as statuses with an encoded grpc-message", async () => {
    const { server } = await echoServer();
    const ok = await rawCall(server.port, "/t.T/Reverse", grpcFrame(Buffer.from("abc")));
    expect(ok.headers[":status"]).toBe(200);
    expect(ok.headers["content-type"]).toBe("application/grpc");
    expect(ok.messages.map((m) => m.toString())).toEqual(["cba"]);
    expect(ok.trailers["grpc-status"]).toBe("0");

    const echo = await rawCall(server.port, "/t.T/Echo", Buffer.concat([grpcFrame(Buffer.from("one")), grpcFrame(Buffer.from("two"))]));
    expect(echo.messages.map((m) => m.toString())).toEqual(["one", "two"]);
    expect(echo.trailers["grpc-status"]).toBe("0");

    // Trailers-only: the status in the response headers; grpc-message percent-encoded.
    const bad = await rawCall(server.port, "/t.T/Reverse", grpcFrame(Buffer.alloc(0)));
    expect(bad.headers["grpc-status"]).toBe(String(Status.INVALID_ARGUMENT));
    expect(bad.headers["grpc-message"]).toBe("empty %E2%80%94 na%C3%AFve %25");
    expect(bad.messages).toEqual([]);
  });

  it("refuses an unknown method, a compressed or oversized message, two messages on a unary call, and a non-gRPC request", async () => {
    const { server } = await echoServer();
    expect((await rawCall(server.port, "/t.T/Nope", grpcFrame(Buffer.from("x")))).headers["grpc-status"]).toBe(String(Status.UNIMPLEMENTED));
    expect((await rawCall(server.port, "/t.T/Echo", grpcFrame(Buffer.from("x")), { "grpc-encoding": "gzip" })).headers["grpc-status"]).toBe(String(Status.UNIMPLEMENTED));
    const compressed = grpcFrame(Buffer.from("x"));
    compressed[0] = 1;
    const c = await rawCall(server.port, "/t.T/Echo", compressed);
    expect(c.headers["grpc-status"] ?? c.trailers["grpc-status"]).toBe(String(Status.UNIMPLEMENTED));
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(5 * 1024 * 1024, 1);
    const h = await rawCall(server.port, "/t.T/Echo", huge);
    expect(h.headers["grpc-status"] ?? h.trailers["grpc-status"]).toBe(String(Status.RESOURCE_EXHAUSTED));
    const two = await rawCall(server.port, "/t.T/Reverse", Buffer.concat([grpcFrame(Buffer.from("a")), grpcFrame(Buffer.from("b"))]));
    expect(two.headers["grpc-status"]).toBe(String(Status.UNIMPLEMENTED));
    const plain = await rawCall(server.port, "/t.T/Echo", Buffer.from("hi"), { "content-type": "text/plain" });
    expect(plain.headers[":status"]).toBe(415);
  });

  it("grpc-js clients see UNIMPLEMENTED for a method not served and INVALID_ARGUMENT for a RuleRequest that does not decode", async () => {
    const server = await startGrpcServer({ port: 0, rules: new MemoryRuleSource([mockGroup(10)]) });
    cleanup.push(() => server.close());
    const client = new GraylaneClient(`127.0.0.1:${server.port}`);
    cleanup.push(() => client.close());
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      client.makeUnaryRequest("/graylane.v1.Traffic/Report", (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e!));
    });
    expect(err.code).toBe(grpc.status.UNIMPLEMENTED); // no traffic sink: the Traffic service is not served

    const garbage = await rawCall(server.port, STREAM_RULES_PATH, grpcFrame(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])));
    expect(garbage.headers["grpc-status"] ?? garbage.trailers["grpc-status"]).toBe(String(Status.INVALID_ARGUMENT));
    expect(server.status().nodes).toEqual([]);

    // A well-formed hello still works on the same server.
    const hello = grpcFrame(serializeRuleRequest(create(RuleRequestSchema, { node: { id: "n" }, instanceId: "n/1" })));
    const session = connect(`http://127.0.0.1:${server.port}`);
    cleanup.push(() => session.destroy());
    const req = session.request({ ":method": "POST", ":path": STREAM_RULES_PATH, "content-type": "application/grpc", te: "trailers" });
    req.write(hello);
    const first = await new Promise<Buffer>((resolve) => req.on("data", (c: Buffer) => resolve(c)));
    expect(first.length).toBeGreaterThan(5);
    expect(server.status().nodes.map((n) => n.nodeId)).toEqual(["n"]);
  });

  it("drops a connection whose peer stops answering pings (keepalive); one that answers stays", async () => {
    const { server } = await echoServer({ timeMs: 100, timeoutMs: 200 });
    const answering = connect(`http://127.0.0.1:${server.port}`);
    cleanup.push(() => answering.destroy());
    let answeringClosed = false;
    answering.on("close", () => (answeringClosed = true));
    // A peer that speaks the HTTP/2 preface and then never answers anything, pings included.
    const silent = netConnect(server.port, "127.0.0.1");
    cleanup.push(() => silent.destroy());
    let silentClosed = false;
    silent.on("data", () => {});
    silent.on("close", () => (silentClosed = true));
    silent.on("error", () => {});
    silent.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    for (let i = 0; i < 40 && !silentClosed; i++) await new Promise((r) => setTimeout(r, 50));
    expect(silentClosed).toBe(true);
    expect(answeringClosed).toBe(false);
  });
});
