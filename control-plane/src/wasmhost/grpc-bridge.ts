// Connects a VM's gRPC calls and streams to real gRPC servers over grpc-js, the way Envoy would
// through the cluster the filter names: message bytes pass through untouched. Lets the real
// filter.wasm in this host subscribe to a real control plane (tests, preview tooling).
import * as grpc from "@grpc/grpc-js";
import { parseGrpcService, type GrpcCall, type GrpcHandler, type GrpcStream } from "./grpc.js";

const raw = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const identity = (b: Buffer): Buffer => b;

/** What Envoy sends with each call: the GrpcService's initial_metadata, then the call's own. */
function metadataOf(t: GrpcCall | GrpcStream): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of parseGrpcService(t.serviceBytes)?.initialMetadata ?? []) md.add(k, v);
  for (const [k, v] of t.initialMetadata) md.add(k, v);
  return md;
}

export interface GrpcBridge extends GrpcHandler {
  /** Ends every open stream and closes the channels. */
  close(): void;
}

/** `clusters` maps the cluster names the filter uses to host:port targets. */
export function grpcBridge(clusters: Record<string, string>): GrpcBridge {
  const clients = new Map<string, grpc.Client>();
  const open = new Set<grpc.ClientDuplexStream<Buffer, Buffer>>();
  const clientFor = (cluster: string): grpc.Client | undefined => {
    const target = clusters[cluster];
    if (!target) return undefined;
    let c = clients.get(cluster);
    if (!c) {
      c = new grpc.Client(target, grpc.credentials.createInsecure());
      clients.set(cluster, c);
    }
    return c;
  };
  return {
    onCall(call: GrpcCall) {
      const client = clientFor(call.service);
      if (!client) { queueMicrotask(() => call.fail(grpc.status.UNAVAILABLE, `no cluster ${call.service}`)); return; }
      client.makeUnaryRequest(`/${call.serviceName}/${call.method}`, raw, identity, raw(call.message), metadataOf(call),
        { deadline: Date.now() + (call.timeoutMs || 5000) },
        (err, reply) => { if (err || !reply) call.fail(err?.code ?? grpc.status.UNKNOWN, err?.details ?? ""); else call.respond(reply); });
    },
    onStream(stream: GrpcStream) {
      const client = clientFor(stream.service);
      if (!client) { queueMicrotask(() => stream.close(grpc.status.UNAVAILABLE, `no cluster ${stream.service}`)); return; }
      const remote = client.makeBidiStreamRequest(`/${stream.serviceName}/${stream.method}`, raw, identity, metadataOf(stream));
      open.add(remote);
      stream.onSend = (message, endStream) => {
        remote.write(raw(message));
        if (endStream) remote.end();
      };
      remote.on("data", (message: Buffer) => stream.send(new Uint8Array(message)));
      remote.on("error", (err: grpc.ServiceError) => { open.delete(remote); stream.close(err.code ?? grpc.status.UNKNOWN, err.details ?? ""); });
      remote.on("end", () => { open.delete(remote); stream.close(grpc.status.OK); });
    },
    close() {
      for (const s of open) s.cancel();
      open.clear();
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}
