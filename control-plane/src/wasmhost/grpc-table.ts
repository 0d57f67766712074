// The gRPC calls and streams one VM's module started: every one in order (for tests to inspect),
// the live ones by token, and the status of the last gRPC callback (what proxy_get_status reads).
import type { GrpcCall, GrpcDispatch, GrpcHandler, GrpcStream } from "./grpc.js";

export class GrpcTable {
  /** Every unary call the module started, in order. */
  readonly calls: GrpcCall[] = [];
  /** Every stream the module opened, in order. */
  readonly streams: GrpcStream[] = [];
  /** proxy_get_status: the status of the last gRPC callback. */
  status: { code: number; message: string } = { code: 0, message: "" };
  private readonly live = new Map<number, GrpcCall | GrpcStream>();
  private lastToken = 0;

  constructor(
    /** How calls and streams deliver their callbacks (the VM). */
    readonly dispatch: GrpcDispatch,
    private readonly handler: GrpcHandler | undefined,
  ) {}

  nextToken(): number {
    return ++this.lastToken;
  }

  /** Registers a call the module started and hands it to the handler. */
  startCall(call: GrpcCall): void {
    this.calls.push(call);
    this.live.set(call.token, call);
    this.handler?.onCall?.(call);
  }

  startStream(stream: GrpcStream): void {
    this.streams.push(stream);
    this.live.set(stream.token, stream);
    this.handler?.onStream?.(stream);
  }

  get(token: number): GrpcCall | GrpcStream | undefined {
    return this.live.get(token);
  }

  forget(token: number): void {
    this.live.delete(token);
  }

  /** The live calls and streams (a copy: failing one removes it). */
  liveTargets(): Array<GrpcCall | GrpcStream> {
    return [...this.live.values()];
  }
}
