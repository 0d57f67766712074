// gRPC calls and streams the module starts (proxy_grpc_call / proxy_grpc_stream), handed to a test
// or the preview API through a GrpcHandler, which answers them by calling methods on the objects.
//
// Envoy semantics reproduced (source/extensions/common/wasm/context.cc):
//  - unary call success → proxy_on_grpc_receive only (there is NO proxy_on_grpc_close after a
//    successful unary call; the call is simply over); failure → proxy_on_grpc_close(status);
//  - stream: messages → proxy_on_grpc_receive; remote close → proxy_on_grpc_close(status), after
//    which the token is gone; the filter may half-close (proxy_grpc_close, or send with
//    end_stream) and still receive; proxy_grpc_cancel drops the call/stream with no callback;
//  - callbacks go to the context that started the call (normally the root context);
//  - callbacks never re-enter the module: answering from inside a host call (e.g. from onCall,
//    which runs during proxy_grpc_call) is delivered right after the current export returns.
// Without a handler calls and streams are accepted (Ok) and stay pending. A pending unary call
// with a timeout fails with DEADLINE_EXCEEDED (4) once the VM's clock passes its deadline; the
// VM checks on every tick() and on checkGrpcDeadlines().
import { GrpcStatus } from "./abi.js";
import { type Bytes, fromUtf8, toBytes } from "./bytes.js";
import { HeaderMap, type HeaderInput } from "./header-map.js";

export interface GrpcHandler {
  /** Called synchronously from proxy_grpc_call. */
  onCall?(call: GrpcCall): void;
  /** Called synchronously from proxy_grpc_stream. */
  onStream?(stream: GrpcStream): void;
}

/** @internal What the VM provides to deliver callbacks (deferred when the module is busy). */
export interface GrpcDispatch {
  grpcInitialMetadata(target: GrpcStream, md: HeaderMap): void;
  grpcReceive(target: GrpcCall | GrpcStream, message: Bytes): void;
  grpcTrailingMetadata(target: GrpcStream, md: HeaderMap): void;
  grpcClose(target: GrpcCall | GrpcStream, status: number, message: string): void;
  /** Forget the token (no more host-side state). */
  grpcForget(token: number): void;
}

export interface GrpcTarget {
  token: number;
  /** The context that started it, which receives the callbacks. */
  contextId: number;
  /**
   * The `service` argument as the cluster it names: Envoy takes a serialised GrpcService
   * (envoy_grpc.cluster_name) or, when that does not parse, a plain cluster name. Raw bytes are in
   * serviceBytes.
   */
  service: string;
  serviceBytes: Bytes;
  serviceName: string;
  method: string;
  initialMetadata: Array<[string, string]>;
  initialMetadataMap: HeaderMap;
}

interface TargetInit {
  token: number;
  contextId: number;
  service: Bytes;
  serviceName: Bytes;
  method: Bytes;
  initialMetadata: HeaderMap;
}

export type GrpcCallState = "pending" | "responded" | "failed" | "cancelled";

export class GrpcCall implements GrpcTarget {
  readonly token: number;
  readonly contextId: number;
  readonly service: string;
  readonly serviceBytes: Bytes;
  readonly serviceName: string;
  readonly method: string;
  readonly initialMetadata: Array<[string, string]>;
  readonly initialMetadataMap: HeaderMap;
  readonly message: Bytes;
  readonly timeoutMs: number;
  /** Clock reading (ns) when the deadline passes; undefined without a timeout. */
  readonly deadlineNs: bigint | undefined;
  state: GrpcCallState = "pending";

  /** @internal */
  constructor(init: TargetInit & { message: Bytes; timeoutMs: number; nowNs: bigint }, private readonly vm: GrpcDispatch) {
    this.token = init.token;
    this.contextId = init.contextId;
    this.serviceBytes = init.service;
    this.service = clusterName(init.service);
    this.serviceName = fromUtf8(init.serviceName);
    this.method = fromUtf8(init.method);
    this.initialMetadataMap = init.initialMetadata;
    this.initialMetadata = init.initialMetadata.toStringPairs();
    this.message = init.message;
    this.timeoutMs = init.timeoutMs;
    this.deadlineNs = init.timeoutMs > 0 ? init.nowNs + BigInt(init.timeoutMs) * 1_000_000n : undefined;
  }

  get pending(): boolean {
    return this.state === "pending";
  }

  /** True when the module cancelled (or closed) the call. */
  get cancelled(): boolean {
    return this.state === "cancelled";
  }

  /**
   * Success: proxy_on_grpc_receive with `message` readable as GrpcReceiveBuffer. Returns false
   * (and does nothing) when the call is no longer pending, e.g. the module cancelled it.
   */
  respond(message: Bytes | string = new Uint8Array()): boolean {
    if (this.state !== "pending") return false;
    this.state = "responded";
    this.vm.grpcForget(this.token);
    this.vm.grpcReceive(this, toBytes(message));
    return true;
  }

  /** Failure: proxy_on_grpc_close(status). Returns false when the call is no longer pending. */
  fail(status: number = GrpcStatus.Unavailable, message = ""): boolean {
    if (this.state !== "pending") return false;
    this.state = "failed";
    this.vm.grpcForget(this.token);
    this.vm.grpcClose(this, status, message);
    return true;
  }

  /** @internal the module cancelled it */
  markCancelled(): void {
    this.state = "cancelled";
  }
}

export class GrpcStream implements GrpcTarget {
  readonly token: number;
  readonly contextId: number;
  readonly service: string;
  readonly serviceBytes: Bytes;
  readonly serviceName: string;
  readonly method: string;
  readonly initialMetadata: Array<[string, string]>;
  readonly initialMetadataMap: HeaderMap;
  /** Messages the module sent, in order. */
  readonly sent: Bytes[] = [];
  /** Called for every message the module sends (synchronously, from proxy_grpc_send). */
  onSend?: (message: Bytes, endStream: boolean) => void;
  /** The module half-closed its side (proxy_grpc_close or a send with end_stream). */
  closedByFilter = false;
  /** The module cancelled (reset) the stream. */
  cancelled = false;
  /** This side closed it (close()); no more callbacks. */
  closedByRemote = false;

  /** @internal */
  constructor(init: TargetInit, private readonly vm: GrpcDispatch) {
    this.token = init.token;
    this.contextId = init.contextId;
    this.serviceBytes = init.service;
    this.service = clusterName(init.service);
    this.serviceName = fromUtf8(init.serviceName);
    this.method = fromUtf8(init.method);
    this.initialMetadataMap = init.initialMetadata;
    this.initialMetadata = init.initialMetadata.toStringPairs();
  }

  /** Open from the server's side: neither cancelled nor closed by close(). */
  get open(): boolean {
    return !this.cancelled && !this.closedByRemote;
  }

  /** Server → module: proxy_on_grpc_receive_initial_metadata. */
  sendInitialMetadata(headers: HeaderInput): boolean {
    if (!this.open) return false;
    this.vm.grpcInitialMetadata(this, new HeaderMap(headers));
    return true;
  }

  /** Server → module: proxy_on_grpc_receive, the message readable as GrpcReceiveBuffer. */
  send(message: Bytes | string): boolean {
    if (!this.open) return false;
    this.vm.grpcReceive(this, toBytes(message));
    return true;
  }

  /**
   * Server closes the stream: optional trailing metadata (proxy_on_grpc_receive_trailing_metadata),
   * then proxy_on_grpc_close(status). The token is gone afterwards.
   */
  close(status = 0, message = "", trailingMetadata?: HeaderInput): boolean {
    if (!this.open) return false;
    this.closedByRemote = true;
    this.vm.grpcForget(this.token);
    if (trailingMetadata) this.vm.grpcTrailingMetadata(this, new HeaderMap(trailingMetadata));
    this.vm.grpcClose(this, status, message);
    return true;
  }
}

/**
 * The cluster a proxy_grpc_* `service` argument names: GrpcService{envoy_grpc(1){cluster_name(1),
 * authority(2)}} when the bytes are that message, else the bytes as a plain cluster name (as Envoy does).
 */
export function clusterName(service: Bytes): string {
  return parseGrpcService(service)?.cluster ?? fromUtf8(service);
}

/**
 * GrpcService.envoy_grpc's cluster_name and authority, and the initial_metadata Envoy adds to every
 * call, or undefined when the bytes are not that message.
 */
export function parseGrpcService(service: Bytes): { cluster: string; authority: string; initialMetadata: Array<[string, string]> } | undefined {
  const fields = (b: Bytes): (Map<number, Bytes> & { all: Array<[number, Bytes]> }) | undefined => {
    const out = new Map<number, Bytes>();
    const all: Array<[number, Bytes]> = [];
    let i = 0;
    const varint = (): number | undefined => {
      let v = 0;
      for (let shift = 0; i < b.length && shift < 35; shift += 7) {
        const c = b[i++]!;
        v |= (c & 0x7f) << shift;
        if (c < 0x80) return v >>> 0;
      }
      return undefined;
    };
    while (i < b.length) {
      const tag = varint();
      if (tag === undefined || (tag & 7) !== 2) return undefined; // only length-delimited fields here
      const n = varint();
      if (n === undefined || i + n > b.length) return undefined;
      out.set(tag >>> 3, b.subarray(i, i + n));
      all.push([tag >>> 3, b.subarray(i, i + n)]);
      i += n;
    }
    return Object.assign(out, { all });
  };
  const outer = fields(service);
  const envoyGrpc = outer?.get(1);
  const inner = envoyGrpc && fields(envoyGrpc);
  const cluster = inner?.get(1);
  if (!cluster) return undefined;
  const initialMetadata: Array<[string, string]> = [];
  for (const [f, v] of outer!.all) {
    if (f !== 5) continue;
    const hv = fields(v);
    if (hv) initialMetadata.push([fromUtf8(hv.get(1) ?? new Uint8Array()), fromUtf8(hv.get(2) ?? new Uint8Array())]);
  }
  return { cluster: fromUtf8(cluster), authority: fromUtf8(inner!.get(2) ?? new Uint8Array()), initialMetadata };
}
