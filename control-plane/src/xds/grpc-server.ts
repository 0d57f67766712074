// A gRPC server on node:http2 for the control plane's two methods: the rule stream (bidirectional)
// and the traffic report (unary). Why not grpc-js's server: a push writes one RuleResponse to
// 10,000 streams, and grpc-js serializes, frames and copies it per stream through object-mode
// streams and interceptors, which cost the control plane about twice what writing the bytes costs
// (bench/push-latency measures both). Here a handler writes an already framed message — the same
// Buffer for every stream — and reads messages as views of the DATA chunks. Clients are unchanged:
// Envoy's gRPC client, grpc-js (the tests, the CLI, replicas forwarding reports) speak to it as to
// any gRPC server; what it does not do (compression, deadlines on streams) is refused or unused.
import {
  createSecureServer,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo } from "node:net";
import type { PeerCertificate, TLSSocket } from "node:tls";
import { encodeGrpcMessage, FrameError, grpcFrame, MessageReader, Status } from "./grpc-wire.js";

/** What a handler knows of its caller. */
export interface GrpcPeer {
  /** The `authorization` header, if sent. */
  readonly authorization: string | undefined;
  /** The client certificate of a TLS connection (empty object or undefined when none). */
  peerCertificate(): PeerCertificate | undefined;
}

export class GrpcError extends Error {
  constructor(readonly code: number, readonly details: string) {
    super(details);
  }
}

/** A bidirectional call as its handler drives it. */
export interface BidiCall extends GrpcPeer {
  /** Writes one framed message (grpcFrame); false: the stream's buffer is full, wait for onDrain. Throws once the stream is gone. */
  write(frame: Buffer): boolean;
  onDrain(fn: () => void): void;
  /** Ends the call with OK or the given status. */
  end(error?: GrpcError): void;
  /** A message arrived (a view valid for the duration of the call). */
  onMessage(fn: (message: Buffer) => void): void;
  /** The client half-closed its side. */
  onHalfClose(fn: () => void): void;
  /** The call is over (ended, cancelled, the connection gone); called once. */
  onClose(fn: () => void): void;
}

export type GrpcMethod =
  | { kind: "bidi"; handle(call: BidiCall): void }
  /** Returns (or resolves to) the reply's encoding, or throws / rejects with a GrpcError (anything else: INTERNAL). */
  | { kind: "unary"; handle(peer: GrpcPeer, request: Buffer): Uint8Array | Promise<Uint8Array> };

export interface GrpcServerOptions {
  host: string;
  port: number;
  /** TLS; with `clientCa`, a client must present a certificate it signed (mTLS). */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** Ping every connection this often and drop it when a ping goes unanswered for `timeoutMs`. */
  keepalive?: { timeMs: number; timeoutMs: number };
}

export interface GrpcServer {
  port: number;
  /** Stops accepting; open connections get a GOAWAY and are destroyed after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

const RESPONSE_HEADERS = { ":status": 200, "content-type": "application/grpc" } as const;

/** Set on a session whenever a message arrives on it: keepalive counts that as an answer. */
const HEARD = Symbol("graylane.heard");
type Heard = { [HEARD]?: boolean };

/** The call state one stream carries. */
class Call implements BidiCall {
  private responded = false;
  private finished = false;
  private trailers: Record<string, string> = { "grpc-status": "0" };

  constructor(private readonly stream: ServerHttp2Stream, private readonly headers: IncomingHttpHeaders) {
    stream.on("wantTrailers", () => stream.sendTrailers(this.trailers));
  }

  get authorization(): string | undefined {
    const a = this.headers.authorization;
    return Array.isArray(a) ? a[0] : a;
  }

  peerCertificate(): PeerCertificate | undefined {
    const socket = this.stream.session?.socket as TLSSocket | undefined;
    return typeof socket?.getPeerCertificate === "function" ? socket.getPeerCertificate() : undefined;
  }

  write(frame: Buffer): boolean {
    if (this.finished || this.stream.destroyed) throw new Error("the call is over");
    if (!this.responded) {
      this.responded = true;
      this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
    }
    return this.stream.write(frame);
  }

  onDrain(fn: () => void): void {
    this.stream.once("drain", fn);
  }

  end(error?: GrpcError): void {
    if (this.finished || this.stream.destroyed) return;
    this.finished = true;
    const trailers: Record<string, string> = error ? { "grpc-status": String(error.code), "grpc-message": encodeGrpcMessage(error.details) } : { "grpc-status": "0" };
    if (this.responded) {
      this.trailers = trailers;
      this.stream.end();
    } else {
      // Trailers-only: the status in the one HEADERS frame.
      this.stream.respond({ ...RESPONSE_HEADERS, ...trailers }, { endStream: true });
    }
  }

  onMessage(fn: (message: Buffer) => void): void {
    const reader = new MessageReader(fn);
    const session = this.stream.session as Heard | undefined;
    this.stream.on("data", (chunk: Buffer) => {
      if (session) session[HEARD] = true;
      try {
        reader.push(chunk);
      } catch (e) {
        this.end(e instanceof FrameError ? new GrpcError(e.code, e.message) : new GrpcError(Status.INTERNAL, String(e)));
        this.stream.close();
      }
    });
  }

  onHalfClose(fn: () => void): void {
    this.stream.on("end", fn);
  }

  onClose(fn: () => void): void {
    this.stream.once("close", fn);
  }
}

function serveUnary(call: Call, method: Extract<GrpcMethod, { kind: "unary" }>): void {
  const messages: Buffer[] = [];
  call.onMessage((m) => messages.push(Buffer.from(m)));
  call.onHalfClose(() => {
    if (messages.length !== 1) {
      call.end(new GrpcError(Status.UNIMPLEMENTED, `a unary call carries one request message, not ${messages.length}`));
      return;
    }
    const fail = (e: unknown) => call.end(e instanceof GrpcError ? e : new GrpcError(Status.INTERNAL, e instanceof Error ? e.message : String(e)));
    const answer = (reply: Uint8Array) => {
      try {
        call.write(grpcFrame(reply));
        call.end();
      } catch {
        // the caller went away meanwhile
      }
    };
    let reply: Uint8Array | Promise<Uint8Array>;
    try {
      reply = method.handle(call, messages[0]!);
    } catch (e) {
      fail(e);
      return;
    }
    if (reply instanceof Uint8Array) answer(reply);
    else reply.then(answer, fail);
  });
}

export async function startGrpcHttp2Server(opts: GrpcServerOptions, methods: Record<string, GrpcMethod>): Promise<GrpcServer> {
  const server: Http2Server = opts.tls
    ? createSecureServer({
        cert: opts.tls.cert,
        key: opts.tls.key,
        ca: opts.tls.clientCa,
        requestCert: !!opts.tls.clientCa,
        rejectUnauthorized: !!opts.tls.clientCa,
        ALPNProtocols: ["h2"],
      }) as unknown as Http2Server
    : createServer();
  const sessions = new Set<Http2Session>();
  server.on("session", (session: Http2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => session.destroy());
  });
  server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on("error", () => {}); // a reset by the peer: the call's onClose handles it
    const contentType = headers["content-type"] ?? "";
    if (headers[":method"] !== "POST" || !/^application\/grpc($|[+;])/.test(contentType)) {
      stream.respond({ ":status": 415, "content-type": "text/plain" }, { endStream: true });
      return;
    }
    const call = new Call(stream, headers);
    const encoding = headers["grpc-encoding"];
    const method = methods[headers[":path"] ?? ""];
    if (encoding !== undefined && encoding !== "identity") call.end(new GrpcError(Status.UNIMPLEMENTED, `grpc-encoding ${encoding} is not supported`));
    else if (!method) call.end(new GrpcError(Status.UNIMPLEMENTED, `unknown method ${headers[":path"]}`));
    else if (method.kind === "bidi") method.handle(call);
    else serveUnary(call, method);
  });

  // Keepalive: notice dead peers, so "live subscribers" stays true to its name. One timer for all.
  let keepalive: NodeJS.Timeout | undefined;
  if (opts.keepalive) {
    const { timeMs, timeoutMs } = opts.keepalive;
    const state = new WeakMap<Http2Session, { lastPing: number; pendingSince: number | undefined }>();
    keepalive = setInterval(() => {
      const now = Date.now();
      for (const s of sessions) {
        const st = state.get(s);
        if (!st) {
          state.set(s, { lastPing: now, pendingSince: undefined });
          continue;
        }
        const heard = s as Heard;
        if (st.pendingSince !== undefined) {
          // Data that arrived since the ping proves the peer alive as well as the ping's answer
          // would (an overloaded control plane may read that answer late).
          if (heard[HEARD]) st.pendingSince = undefined;
          else if (now - st.pendingSince > timeoutMs) s.destroy();
          continue;
        }
        if (now - st.lastPing < timeMs) continue;
        st.lastPing = st.pendingSince = now;
        heard[HEARD] = false;
        try {
          s.ping(() => (st.pendingSince = undefined));
        } catch {
          st.pendingSince = undefined;
        }
      }
    }, Math.min(timeMs, timeoutMs) / 2);
    keepalive.unref();
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    close: (graceMs = 2_000) =>
      (closed ??= new Promise<void>((resolve) => {
        clearInterval(keepalive);
        server.close(() => resolve());
        for (const s of sessions) s.close();
        setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, graceMs).unref();
      })),
  };
}
