// The proxy-wasm ABI 0.2.1 exports: thin dispatchers to the context objects, plus the allocator the
// host uses to hand us data. Re-exported by plugin.ts (only the entry file's exports are exported).
import { createContext, roots, rootById, streams } from "./context";
import * as arena from "./arena";

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_memory_allocate(size: usize): usize {
  return arena.allocate(size);
}

// Memory: the module uses AssemblyScript's minimal runtime (two-colour mark & sweep, no automatic
// collection, no shadow stack). The hot path allocates nothing managed (pooled contexts, unmanaged
// scratch buffers), so garbage only comes from configuration, RuleSet application and reports. It is
// collected here, at export entry where no AssemblyScript frame holds a reference: every
// COLLECT_EVERY new streams and on every tick. Never a full collection per request.
const COLLECT_EVERY: u32 = 4096;
let streamsSinceCollect: u32 = 0;

function collectAtSafePoint(): void {
  streamsSinceCollect = 0;
  __collect();
}

export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {
  if (++streamsSinceCollect >= COLLECT_EVERY || parentContextId == 0) collectAtSafePoint();
  createContext(contextId, parentContextId);
}

export function proxy_on_vm_start(rootId: u32, vmConfigSize: u32): u32 {
  const r = rootById(rootId);
  return r != null && r.onVmStart(vmConfigSize) ? 1 : 0;
}

export function proxy_on_configure(rootId: u32, pluginConfigSize: u32): u32 {
  const r = rootById(rootId);
  const ok = r != null && r.onConfigure(pluginConfigSize);
  // Applying a RuleSet leaves garbage; collect it now rather than at the next tick (a reconfigured
  // VM without traffic or ticks would otherwise grow). Safe: only this frame holds references.
  collectAtSafePoint();
  return ok ? 1 : 0;
}

export function proxy_on_tick(rootId: u32): void {
  collectAtSafePoint();
  const r = rootById(rootId);
  if (r != null) r.onTick();
}

export function proxy_on_queue_ready(rootId: u32, queueId: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onQueueReady(queueId);
}

export function proxy_on_foreign_function(rootId: u32, functionId: u32, dataSize: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onForeignFunction(functionId, dataSize);
}

// Network (L4) hooks: the lane filter is an HTTP filter, so a connection just continues.
export function proxy_on_new_connection(contextId: u32): u32 { return 0; }
export function proxy_on_downstream_data(contextId: u32, dataSize: u32, endOfStream: u32): u32 { return 0; }
export function proxy_on_upstream_data(contextId: u32, dataSize: u32, endOfStream: u32): u32 { return 0; }
export function proxy_on_downstream_connection_close(contextId: u32, peerType: u32): void {}
export function proxy_on_upstream_connection_close(contextId: u32, peerType: u32): void {}

export function proxy_on_request_headers(contextId: u32, headers: u32, endOfStream: u32): u32 {
  const s = streams.get(contextId);
  if (s == null) return 0;
  arena.begin(); // host blocks returned in this hook live in the arena
  const r = s.onRequestHeaders(headers, endOfStream != 0);
  arena.end();
  return r;
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  const s = streams.get(contextId);
  return s != null ? s.onRequestBody(bodySize, endOfStream != 0) : 0;
}

export function proxy_on_request_trailers(contextId: u32, trailers: u32): u32 {
  const s = streams.get(contextId);
  return s != null ? s.onRequestTrailers(trailers) : 0;
}

export function proxy_on_request_metadata(contextId: u32, elements: u32): u32 { return 0; }

export function proxy_on_response_headers(contextId: u32, headers: u32, endOfStream: u32): u32 {
  const s = streams.get(contextId);
  if (s == null) return 0;
  arena.begin(); // host blocks returned in this hook live in the arena
  const r = s.onResponseHeaders(headers, endOfStream != 0);
  arena.end();
  return r;
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: u32): u32 {
  const s = streams.get(contextId);
  return s != null ? s.onResponseBody(bodySize, endOfStream != 0) : 0;
}

export function proxy_on_response_trailers(contextId: u32, trailers: u32): u32 {
  const s = streams.get(contextId);
  if (s == null) return 0;
  arena.begin(); // host blocks returned in this hook live in the arena
  const r = s.onResponseTrailers(trailers);
  arena.end();
  return r;
}

export function proxy_on_response_metadata(contextId: u32, elements: u32): u32 { return 0; }

export function proxy_on_http_call_response(rootId: u32, token: u32, headers: u32, bodySize: u32, trailers: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onHttpCallResponse(token, headers, bodySize, trailers);
}

export function proxy_on_grpc_receive_initial_metadata(rootId: u32, token: u32, headers: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onGrpcReceiveInitialMetadata(token, headers);
}

export function proxy_on_grpc_receive(rootId: u32, token: u32, responseSize: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onGrpcReceive(token, responseSize);
}

export function proxy_on_grpc_receive_trailing_metadata(rootId: u32, token: u32, trailers: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onGrpcReceiveTrailingMetadata(token, trailers);
}

export function proxy_on_grpc_close(rootId: u32, token: u32, statusCode: u32): void {
  const r = rootById(rootId);
  if (r != null) r.onGrpcClose(token, statusCode);
}

export function proxy_on_done(contextId: u32): u32 {
  const s = streams.get(contextId);
  if (s != null) return s.onDone() ? 1 : 0;
  const r = rootById(contextId);
  return r == null || r.onDone() ? 1 : 0;
}

export function proxy_on_log(contextId: u32): void {
  const s = streams.get(contextId);
  if (s != null) s.onLog();
}

export function proxy_on_delete(contextId: u32): void {
  const s = streams.get(contextId);
  if (s != null) {
    streams.delete(contextId);
    s.onDelete();
    return;
  }
  const r = rootById(contextId);
  if (r != null) {
    r.onDelete();
    roots.splice(roots.indexOf(r), 1);
  }
}
