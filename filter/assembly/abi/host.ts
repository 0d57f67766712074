// Thin typed wrappers over the imports. Data the host returns lives in blocks it allocated through
// proxy_on_memory_allocate (abi/arena.ts: unmanaged, never seen by the GC); the caller reads it via
// `retPtr`/`retLen` and releases it with freeRet() before the next get, or takes the pointer and
// release()s it itself when it must outlive other host calls (never the hook that got it).
import * as imp from "./imports";
import { release } from "./arena";
export { release };
import { LogLevel, WasmResult } from "./types";

const RET: usize = memory.data(16, 8); // [0] ptr, [4] size, [8] cas / metric id, [8..16] time
export let retPtr: usize = 0;
export let retLen: usize = 0;
export let retCas: u32 = 0;

/**
 * Zeroes the return slots before a call: a host that answers Ok without producing data (Envoy's
 * clear_route_cache, an empty buffer) writes nothing, and a stale pointer left there would be read
 * as this call's result and freed twice.
 */
@inline function clearRet(): void {
  store<u64>(RET, 0);
}

@inline function takeRet(status: u32): u32 {
  if (status == WasmResult.Ok) {
    retPtr = <usize>load<u32>(RET);
    retLen = <usize>load<u32>(RET, 4);
  } else {
    retPtr = 0;
    retLen = 0;
  }
  return status;
}

/** Releases the block the last successful get returned (no-op when there is none). */
export function freeRet(): void {
  if (retPtr != 0) release(retPtr);
  retPtr = 0;
  retLen = 0;
}

export function logBytes(level: u32, ptr: usize, len: usize): void {
  imp.proxy_log(level, ptr, len);
}

export function log(level: u32, message: string): void {
  const bytes = String.UTF8.encode(message);
  imp.proxy_log(level, changetype<usize>(bytes), <usize>bytes.byteLength);
}

export function logInfo(message: string): void { log(LogLevel.Info, message); }
export function logWarn(message: string): void { log(LogLevel.Warn, message); }
export function logError(message: string): void { log(LogLevel.Error, message); }

export function nowNanos(): u64 {
  imp.proxy_get_current_time_nanoseconds(RET + 8);
  return load<u64>(RET + 8);
}

export function setTickPeriodMillis(ms: u32): void {
  imp.proxy_set_tick_period_milliseconds(ms);
}

export function getBufferBytes(bufferType: u32, start: u32, maxSize: u32): u32 {
  clearRet();
  return takeRet(imp.proxy_get_buffer_bytes(bufferType, start, maxSize, RET, RET + 4));
}

export function getHeaderMapPairs(mapType: u32): u32 {
  clearRet();
  return takeRet(imp.proxy_get_header_map_pairs(mapType, RET, RET + 4));
}

export function getHeaderMapValue(mapType: u32, keyPtr: usize, keyLen: usize): u32 {
  clearRet();
  return takeRet(imp.proxy_get_header_map_value(mapType, keyPtr, keyLen, RET, RET + 4));
}

export function replaceHeader(mapType: u32, keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize): u32 {
  return imp.proxy_replace_header_map_value(mapType, keyPtr, keyLen, valPtr, valLen);
}

export function addHeader(mapType: u32, keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize): u32 {
  return imp.proxy_add_header_map_value(mapType, keyPtr, keyLen, valPtr, valLen);
}

export function removeHeader(mapType: u32, keyPtr: usize, keyLen: usize): u32 {
  return imp.proxy_remove_header_map_value(mapType, keyPtr, keyLen);
}

/** path: segments separated by 0x00, e.g. "xds\0listener_direction". */
export function getProperty(pathPtr: usize, pathLen: usize): u32 {
  clearRet();
  return takeRet(imp.proxy_get_property(pathPtr, pathLen, RET, RET + 4));
}

export function getSharedData(keyPtr: usize, keyLen: usize): u32 {
  clearRet();
  const status = takeRet(imp.proxy_get_shared_data(keyPtr, keyLen, RET, RET + 4, RET + 8));
  retCas = status == WasmResult.Ok ? load<u32>(RET, 8) : 0;
  return status;
}

export function setSharedData(keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize, cas: u32): u32 {
  return imp.proxy_set_shared_data(keyPtr, keyLen, valPtr, valLen, cas);
}

/** Returns the metric id, or u32.MAX_VALUE when the host refuses. */
export function defineMetric(metricType: u32, name: string): u32 {
  const bytes = String.UTF8.encode(name);
  const status = imp.proxy_define_metric(metricType, changetype<usize>(bytes), <usize>bytes.byteLength, RET + 8);
  return status == WasmResult.Ok ? load<u32>(RET, 8) : u32.MAX_VALUE;
}

export function incrementMetric(id: u32, by: i64): void {
  if (id != u32.MAX_VALUE) imp.proxy_increment_metric(id, by);
}

export function recordMetric(id: u32, value: u64): void {
  if (id != u32.MAX_VALUE) imp.proxy_record_metric(id, value);
}

/** Calls a foreign function with no arguments; the result bytes, if any, are released at once. */
export function callForeign(namePtr: usize, nameLen: usize): u32 {
  clearRet();
  const status = takeRet(imp.proxy_call_foreign_function(namePtr, nameLen, 0, 0, RET, RET + 4));
  freeRet();
  return status;
}

/** Starts a unary gRPC call; returns the status, the token is in `grpcToken`. */
export let grpcToken: u32 = 0;
export function grpcCall(
  service: Uint8Array, serviceName: Uint8Array, method: Uint8Array, messagePtr: usize, messageLen: usize, timeoutMs: u32,
): u32 {
  const status = imp.proxy_grpc_call(
    service.dataStart, <usize>service.byteLength, serviceName.dataStart, <usize>serviceName.byteLength,
    method.dataStart, <usize>method.byteLength, 0, 0, messagePtr, messageLen, timeoutMs, RET + 8);
  grpcToken = status == WasmResult.Ok ? load<u32>(RET, 8) : 0;
  return status;
}

export function grpcStream(service: Uint8Array, serviceName: Uint8Array, method: Uint8Array): u32 {
  const status = imp.proxy_grpc_stream(
    service.dataStart, <usize>service.byteLength, serviceName.dataStart, <usize>serviceName.byteLength,
    method.dataStart, <usize>method.byteLength, 0, 0, RET + 8);
  grpcToken = status == WasmResult.Ok ? load<u32>(RET, 8) : 0;
  return status;
}

export function grpcSend(token: u32, message: Uint8Array, endStream: bool): u32 {
  return imp.proxy_grpc_send(token, message.dataStart, <usize>message.byteLength, endStream ? 1 : 0);
}

export function grpcCancel(token: u32): u32 {
  return imp.proxy_grpc_cancel(token);
}
