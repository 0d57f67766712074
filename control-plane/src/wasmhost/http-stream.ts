// One HTTP stream (an HTTP context of the module), driven phase by phase like Envoy drives a
// filter: request headers → body → trailers, response headers → body → trailers, then
// on_done / on_log / on_delete (complete()).
//
// The header maps and bodies are the host's copies; the module reads and edits them through the
// ABI while its callback runs, and tests read the result afterwards. Not emulated: Envoy's local
// reply path (send_local_response is recorded in `localResponse`; the response phase is not run
// for it) and flow control (Pause is recorded and returned, nothing waits on it).
import { FilterAction } from "./abi.js";
import { type Bytes, concat, fromUtf8, toBytes } from "./bytes.js";
import { HeaderMap, type HeaderInput } from "./header-map.js";
import { PropertyStore, type PropertyRecord, type PropertyValue } from "./properties.js";

/** @internal What a stream needs from its VM (the VM implements it; a stream never sees the VM). */
export interface StreamHost {
  /** Calls export `name` with `ctx` as the effective context; undefined when the module lacks it. */
  invoke(name: string, ctx: HttpStream, args: number[]): number | bigint | undefined;
  /** The context is deleted: the VM no longer knows its id. */
  forgetContext(id: number): void;
}

export interface LocalResponse {
  status: number;
  details: string;
  body: Bytes;
  headers: Array<[string, string]>;
  headerMap: HeaderMap;
  /** -1 when the module passed none. */
  grpcStatus: number;
}

export interface StreamOp {
  op: "continue" | "close";
  /** 0 request, 1 response, 2 downstream, 3 upstream. */
  streamType: number;
}

export interface HttpStreamOptions {
  /** Per-stream properties; they shadow the VM's. */
  properties?: PropertyRecord;
}

export class HttpStream {
  readonly kind = "http";
  readonly properties: PropertyStore;
  readonly requestHeaderMap = new HeaderMap();
  readonly requestTrailerMap = new HeaderMap();
  readonly responseHeaderMap = new HeaderMap();
  readonly responseTrailerMap = new HeaderMap();
  requestBody: Bytes = new Uint8Array();
  responseBody: Bytes = new Uint8Array();
  /** Set by proxy_send_local_response. */
  localResponse: LocalResponse | undefined;
  /** proxy_continue_stream / proxy_close_stream calls, in order. */
  readonly streamOps: StreamOp[] = [];
  /** What the last callback of each phase returned. */
  readonly actions: { requestHeaders?: number; requestBody?: number; requestTrailers?: number; responseHeaders?: number; responseBody?: number; responseTrailers?: number } = {};
  /** complete() ran (the context is deleted). */
  completed = false;

  /** @internal use vm.newHttpStream() */
  constructor(
    private readonly host: StreamHost,
    readonly id: number,
    opts: HttpStreamOptions = {},
  ) {
    this.properties = new PropertyStore(opts.properties);
  }

  setProperty(path: string, value: PropertyValue): void {
    this.properties.set(path, value);
  }

  // ---- driving the phases ----

  callOnRequestHeaders(headers: HeaderInput, endOfStream = false): number {
    this.requestHeaderMap.setAll(headers);
    return (this.actions.requestHeaders = this.call("proxy_on_request_headers", this.requestHeaderMap.size, endOfStream ? 1 : 0));
  }

  /** A body chunk; appended to the buffered body when the previous body callback paused (buffering). */
  callOnRequestBody(chunk: Bytes | string, endOfStream = true): number {
    this.requestBody = this.actions.requestBody === FilterAction.Pause ? concat([this.requestBody, toBytes(chunk)]) : toBytes(chunk);
    return (this.actions.requestBody = this.call("proxy_on_request_body", this.requestBody.length, endOfStream ? 1 : 0));
  }

  callOnRequestTrailers(trailers: HeaderInput): number {
    this.requestTrailerMap.setAll(trailers);
    return (this.actions.requestTrailers = this.call("proxy_on_request_trailers", this.requestTrailerMap.size));
  }

  callOnResponseHeaders(headers: HeaderInput, endOfStream = false): number {
    this.responseHeaderMap.setAll(headers);
    return (this.actions.responseHeaders = this.call("proxy_on_response_headers", this.responseHeaderMap.size, endOfStream ? 1 : 0));
  }

  callOnResponseBody(chunk: Bytes | string, endOfStream = true): number {
    this.responseBody = this.actions.responseBody === FilterAction.Pause ? concat([this.responseBody, toBytes(chunk)]) : toBytes(chunk);
    return (this.actions.responseBody = this.call("proxy_on_response_body", this.responseBody.length, endOfStream ? 1 : 0));
  }

  callOnResponseTrailers(trailers: HeaderInput): number {
    this.responseTrailerMap.setAll(trailers);
    return (this.actions.responseTrailers = this.call("proxy_on_response_trailers", this.responseTrailerMap.size));
  }

  /** End of the stream: proxy_on_done, proxy_on_log, proxy_on_delete, once each. */
  complete(): void {
    if (this.completed) return;
    this.host.invoke("proxy_on_done", this, [this.id]);
    this.host.invoke("proxy_on_log", this, [this.id]);
    this.completed = true;
    try {
      this.host.invoke("proxy_on_delete", this, [this.id]);
    } finally {
      this.host.forgetContext(this.id);
    }
  }

  private call(name: string, a: number, b?: number): number {
    if (this.completed) throw new Error(`HTTP stream ${this.id} is already complete; ${name} refused`);
    const r = this.host.invoke(name, this, b === undefined ? [this.id, a] : [this.id, a, b]);
    return r === undefined ? FilterAction.Continue : Number(r);
  }

  // ---- reading the result ----

  get requestHeaders(): Array<[string, string]> {
    return this.requestHeaderMap.toStringPairs();
  }
  requestHeader(name: string): string | undefined {
    const v = this.requestHeaderMap.get(name);
    return v === undefined ? undefined : fromUtf8(v);
  }
  requestHeaderValues(name: string): string[] {
    return this.requestHeaderMap.getAll(name).map(fromUtf8);
  }
  requestHeaderBytes(name: string): Bytes | undefined {
    return this.requestHeaderMap.get(name);
  }

  get responseHeaders(): Array<[string, string]> {
    return this.responseHeaderMap.toStringPairs();
  }
  responseHeader(name: string): string | undefined {
    const v = this.responseHeaderMap.get(name);
    return v === undefined ? undefined : fromUtf8(v);
  }
  responseHeaderValues(name: string): string[] {
    return this.responseHeaderMap.getAll(name).map(fromUtf8);
  }
  responseHeaderBytes(name: string): Bytes | undefined {
    return this.responseHeaderMap.get(name);
  }

  get requestTrailers(): Array<[string, string]> {
    return this.requestTrailerMap.toStringPairs();
  }
  get responseTrailers(): Array<[string, string]> {
    return this.responseTrailerMap.toStringPairs();
  }
}
