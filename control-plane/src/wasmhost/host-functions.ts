// The proxy-wasm 0.2.1 host functions (module "env"), each returning a WasmResult.
//
// Behaviour follows Envoy (source/extensions/common/wasm/context.cc) and proxy-wasm-cpp-host
// (src/exports.cc) where the spec leaves room; the choices worth knowing:
//  - data returned to the module goes through GuestMemory.returnBytes (empty → ptr 0, size 0);
//  - a header map that does not exist in the current context (e.g. request headers from the root
//    context, HTTP-call maps) → BadArgument; a missing key → NotFound;
//  - proxy_get_header_map_value returns the first value of a repeated header;
//  - proxy_get_header_map_size reports the sum of name and value lengths (Envoy's byteSize());
//  - a malformed serialised map (set_header_map_pairs, local-response headers, gRPC metadata)
//    → SerializationFailure;
//  - PluginConfiguration is readable only during proxy_on_configure, GrpcReceiveBuffer only during
//    proxy_on_grpc_receive, CallData only during proxy_on_foreign_function; VmConfiguration always;
//  - proxy_set_buffer_bytes replaces [start, start+size) of an HTTP body with the data (start 0,
//    size 0 prepends; start >= length appends); other buffers → BadArgument;
//  - shared queues and proxy_http_call → Unimplemented;
//  - a pointer outside linear memory → InvalidMemoryAccess (and a host log line).
import { BufferType, LogLevel, MapType, MetricType, WasmResult } from "./abi.js";
import { binaryKey, type Bytes, concat, fromUtf8, toBytes, utf8 } from "./bytes.js";
import { GrpcCall, GrpcStream } from "./grpc.js";
import { deserializePairs, HeaderMap } from "./header-map.js";
import { HttpStream } from "./http-stream.js";
import { MemoryAccessError } from "./memory.js";
import { wirePropertyKey } from "./properties.js";
import { Stats } from "./stats.js";
import type { WasmVm } from "./vm.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type HostFunction = (...args: any[]) => number;

const { Ok, NotFound, BadArgument, SerializationFailure, InvalidMemoryAccess, Unimplemented, InternalFailure } = WasmResult;

export function createHostFunctions(vm: WasmVm): Record<string, HostFunction> {
  const stream = (): HttpStream | undefined => (vm._current instanceof HttpStream ? vm._current : undefined);

  function headerMap(type: number): HeaderMap | undefined {
    switch (type) {
      case MapType.RequestHeaders: return stream()?.requestHeaderMap;
      case MapType.RequestTrailers: return stream()?.requestTrailerMap;
      case MapType.ResponseHeaders: return stream()?.responseHeaderMap;
      case MapType.ResponseTrailers: return stream()?.responseTrailerMap;
      case MapType.GrpcReceiveInitialMetadata: return vm._cb.grpcInitialMetadata;
      case MapType.GrpcReceiveTrailingMetadata: return vm._cb.grpcTrailingMetadata;
      default: return undefined; // HTTP calls are not implemented
    }
  }

  function buffer(type: number): Bytes | undefined {
    switch (type) {
      case BufferType.HttpRequestBody: return stream()?.requestBody;
      case BufferType.HttpResponseBody: return stream()?.responseBody;
      case BufferType.GrpcReceiveBuffer: return vm._cb.grpcReceive;
      case BufferType.VmConfiguration: return vm.vmConfig;
      case BufferType.PluginConfiguration: return vm._cb.pluginConfig;
      case BufferType.CallData: return vm._cb.callData;
      default: return undefined;
    }
  }

  function property(key: string): Bytes | undefined {
    return stream()?.properties.getWire(key) ?? vm.properties.getWire(key);
  }

  const warnedPaths = new Set<string>();

  const fns: Record<string, HostFunction> = {
    // ---- logging, time, ticks ----

    proxy_log(level: number, ptr: number, size: number): number {
      vm._log(level, fromUtf8(vm._mem.view(ptr, size)));
      return Ok;
    },

    proxy_get_log_level(retPtr: number): number {
      vm._mem.writeU32(retPtr, vm.logLevel);
      return Ok;
    },

    proxy_get_current_time_nanoseconds(retPtr: number): number {
      vm._mem.writeU64(retPtr, vm.clock.nowNs());
      return Ok;
    },

    proxy_set_tick_period_milliseconds(ms: number): number {
      vm.tickPeriodMs = ms >>> 0;
      return Ok;
    },

    // ---- buffers ----

    proxy_get_buffer_bytes(type: number, start: number, maxSize: number, retPtrPtr: number, retSizePtr: number): number {
      const b = buffer(type);
      if (!b) return NotFound;
      const from = start >>> 0;
      if (from > b.length) return BadArgument;
      const to = Math.min(b.length, from + (maxSize >>> 0));
      vm._mem.returnBytes(retPtrPtr, retSizePtr, b.subarray(from, to));
      return Ok;
    },

    proxy_get_buffer_status(type: number, retLenPtr: number, retFlagsPtr: number): number {
      const b = buffer(type);
      if (!b) return NotFound;
      vm._mem.writeU32(retLenPtr, b.length);
      vm._mem.writeU32(retFlagsPtr, 0);
      return Ok;
    },

    proxy_set_buffer_bytes(type: number, start: number, size: number, dataPtr: number, dataSize: number): number {
      const s = stream();
      if (!s || (type !== BufferType.HttpRequestBody && type !== BufferType.HttpResponseBody)) return BadArgument;
      const cur = type === BufferType.HttpRequestBody ? s.requestBody : s.responseBody;
      const from = Math.min(start >>> 0, cur.length);
      const to = Math.min(cur.length, from + (size >>> 0));
      const next = concat([cur.subarray(0, from), vm._mem.read(dataPtr, dataSize), cur.subarray(to)]);
      if (type === BufferType.HttpRequestBody) s.requestBody = next;
      else s.responseBody = next;
      return Ok;
    },

    // ---- header maps ----

    proxy_get_header_map_pairs(type: number, retPtrPtr: number, retSizePtr: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      vm._mem.returnBytes(retPtrPtr, retSizePtr, m.serialize());
      return Ok;
    },

    proxy_set_header_map_pairs(type: number, ptr: number, size: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      const pairs = deserializePairs(vm._mem.view(ptr, size));
      if (!pairs) return SerializationFailure;
      m.setAll(pairs);
      return Ok;
    },

    proxy_get_header_map_value(type: number, keyPtr: number, keySize: number, retPtrPtr: number, retSizePtr: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      const v = m.get(vm._mem.view(keyPtr, keySize));
      if (v === undefined) return NotFound;
      vm._mem.returnBytes(retPtrPtr, retSizePtr, v);
      return Ok;
    },

    proxy_add_header_map_value(type: number, keyPtr: number, keySize: number, valPtr: number, valSize: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      m.add(vm._mem.read(keyPtr, keySize), vm._mem.read(valPtr, valSize));
      return Ok;
    },

    proxy_replace_header_map_value(type: number, keyPtr: number, keySize: number, valPtr: number, valSize: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      m.replace(vm._mem.read(keyPtr, keySize), vm._mem.read(valPtr, valSize));
      return Ok;
    },

    proxy_remove_header_map_value(type: number, keyPtr: number, keySize: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      m.remove(vm._mem.view(keyPtr, keySize));
      return Ok;
    },

    proxy_get_header_map_size(type: number, retPtr: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      vm._mem.writeU32(retPtr, m.byteSize());
      return Ok;
    },

    // ---- properties ----

    proxy_get_property(pathPtr: number, pathSize: number, retPtrPtr: number, retSizePtr: number): number {
      const path = vm._mem.view(pathPtr, pathSize);
      const key = wirePropertyKey(path);
      const v = property(key);
      if (v === undefined) {
        // A common SDK-usage bug Envoy answers with a silent NotFound: say why, once per path.
        if (!key.includes("\0") && key.includes(".") && !warnedPaths.has(key)) {
          warnedPaths.add(key);
          vm._hostLog(LogLevel.Warn, `property path "${fromUtf8(path)}" has no 0x00 separators; Envoy will not find it either`);
        }
        return NotFound;
      }
      vm._mem.returnBytes(retPtrPtr, retSizePtr, v);
      return Ok;
    },

    proxy_set_property(pathPtr: number, pathSize: number, valPtr: number, valSize: number): number {
      const key = wirePropertyKey(vm._mem.view(pathPtr, pathSize));
      (stream()?.properties ?? vm.properties).setWire(key, vm._mem.read(valPtr, valSize));
      return Ok;
    },

    // ---- shared data and queues ----

    proxy_get_shared_data(keyPtr: number, keySize: number, retValPtrPtr: number, retValSizePtr: number, retCasPtr: number): number {
      const e = vm.shared.getRaw(vm.vmId, binaryKey(vm._mem.view(keyPtr, keySize)));
      if (!e) return NotFound;
      vm._mem.writeU32(retCasPtr, e.cas); // before allocating, so a bad pointer leaks nothing
      vm._mem.returnBytes(retValPtrPtr, retValSizePtr, e.value);
      return Ok;
    },

    proxy_set_shared_data(keyPtr: number, keySize: number, valPtr: number, valSize: number, cas: number): number {
      const key = binaryKey(vm._mem.view(keyPtr, keySize));
      return vm.shared.setRaw(vm.vmId, key, vm._mem.read(valPtr, valSize), cas >>> 0);
    },

    proxy_register_shared_queue: () => Unimplemented,
    proxy_resolve_shared_queue: () => Unimplemented,
    proxy_enqueue_shared_queue: () => Unimplemented,
    proxy_dequeue_shared_queue: () => Unimplemented,

    // ---- metrics ----

    proxy_define_metric(type: number, namePtr: number, nameSize: number, retIdPtr: number): number {
      if (type !== MetricType.Counter && type !== MetricType.Gauge && type !== MetricType.Histogram) return BadArgument;
      const m = vm.stats.define(fromUtf8(vm._mem.view(namePtr, nameSize)), type);
      if (!m) return BadArgument; // the name exists with another type
      vm._mem.writeU32(retIdPtr, vm._metricId(m));
      return Ok;
    },

    proxy_increment_metric(id: number, offset: bigint): number {
      const m = vm._metricById(id >>> 0);
      return m ? Stats.increment(m, BigInt(offset)) : NotFound;
    },

    proxy_record_metric(id: number, value: bigint): number {
      const m = vm._metricById(id >>> 0);
      return m ? Stats.record(m, BigInt(value)) : NotFound;
    },

    proxy_get_metric(id: number, retValuePtr: number): number {
      const m = vm._metricById(id >>> 0);
      if (!m) return NotFound;
      if (m.type === MetricType.Histogram) return BadArgument;
      vm._mem.writeU64(retValuePtr, m.value);
      return Ok;
    },

    // ---- foreign functions ----

    proxy_call_foreign_function(namePtr: number, nameSize: number, argsPtr: number, argsSize: number, retPtrPtr: number, retSizePtr: number): number {
      const name = fromUtf8(vm._mem.view(namePtr, nameSize));
      const args = vm._mem.read(argsPtr, argsSize);
      vm.foreignCalls.push({ name, args });
      const f = Object.prototype.hasOwnProperty.call(vm._foreign, name) ? vm._foreign[name] : undefined;
      if (!f) return NotFound;
      const out = f(args, vm);
      // As proxy-wasm-cpp-host does (Envoy's clear_route_cache): a function without a result writes
      // nothing to the result slots; the module must not read stale ones.
      const bytes = out === undefined ? undefined : toBytes(out);
      if (bytes && bytes.length > 0) vm._mem.returnBytes(retPtrPtr, retSizePtr, bytes);
      return Ok;
    },

    // ---- stream control ----

    proxy_continue_stream(streamType: number): number {
      const s = stream();
      if (!s) return BadArgument;
      s.streamOps.push({ op: "continue", streamType });
      return Ok;
    },

    proxy_close_stream(streamType: number): number {
      const s = stream();
      if (!s) return BadArgument;
      s.streamOps.push({ op: "close", streamType });
      return Ok;
    },

    proxy_send_local_response(
      status: number, detailsPtr: number, detailsSize: number, bodyPtr: number, bodySize: number,
      headersPtr: number, headersSize: number, grpcStatus: number,
    ): number {
      const s = stream();
      if (!s) return BadArgument;
      const pairs = deserializePairs(vm._mem.view(headersPtr, headersSize));
      if (!pairs) return SerializationFailure;
      const headerMap = HeaderMap.fromPairs(pairs);
      s.localResponse = {
        status: status >>> 0,
        details: fromUtf8(vm._mem.view(detailsPtr, detailsSize)),
        body: vm._mem.read(bodyPtr, bodySize),
        headers: headerMap.toStringPairs(),
        headerMap,
        grpcStatus: grpcStatus | 0,
      };
      return Ok;
    },

    // ---- contexts ----

    proxy_set_effective_context(contextId: number): number {
      const ctx = vm._contexts.get(contextId >>> 0);
      if (!ctx) return BadArgument;
      vm._current = ctx; // until the current export returns (_invoke restores it)
      return Ok;
    },

    proxy_done(): number {
      vm._done();
      return Ok;
    },

    /** Status of the last gRPC callback: code (u32) and message (returned bytes). */
    proxy_get_status(retCodePtr: number, retMsgPtrPtr: number, retMsgSizePtr: number): number {
      vm._mem.writeU32(retCodePtr, vm._status.code);
      vm._mem.returnBytes(retMsgPtrPtr, retMsgSizePtr, utf8(vm._status.message));
      return Ok;
    },

    // ---- HTTP and gRPC callouts ----

    proxy_http_call(): number {
      vm._hostLog(LogLevel.Warn, "proxy_http_call is not implemented: Unimplemented");
      return Unimplemented;
    },

    proxy_grpc_call(
      servicePtr: number, serviceSize: number, serviceNamePtr: number, serviceNameSize: number,
      methodPtr: number, methodSize: number, mdPtr: number, mdSize: number,
      msgPtr: number, msgSize: number, timeoutMs: number, retTokenPtr: number,
    ): number {
      const ctx = vm._current;
      if (!ctx) return InternalFailure;
      const initialMetadata = readMetadata(mdPtr, mdSize);
      if (!initialMetadata) return SerializationFailure;
      vm._mem.readU32(retTokenPtr); // bounds check before anything is registered
      const call = new GrpcCall(
        {
          token: vm._nextGrpcToken(), contextId: ctx.id,
          service: vm._mem.read(servicePtr, serviceSize), serviceName: vm._mem.read(serviceNamePtr, serviceNameSize),
          method: vm._mem.read(methodPtr, methodSize), initialMetadata,
          message: vm._mem.read(msgPtr, msgSize), timeoutMs: timeoutMs >>> 0, nowNs: vm.clock.nowNs(),
        },
        vm,
      );
      vm._mem.writeU32(retTokenPtr, call.token);
      vm._startGrpcCall(call);
      return Ok;
    },

    proxy_grpc_stream(
      servicePtr: number, serviceSize: number, serviceNamePtr: number, serviceNameSize: number,
      methodPtr: number, methodSize: number, mdPtr: number, mdSize: number, retTokenPtr: number,
    ): number {
      const ctx = vm._current;
      if (!ctx) return InternalFailure;
      const initialMetadata = readMetadata(mdPtr, mdSize);
      if (!initialMetadata) return SerializationFailure;
      vm._mem.readU32(retTokenPtr);
      const stream = new GrpcStream(
        {
          token: vm._nextGrpcToken(), contextId: ctx.id,
          service: vm._mem.read(servicePtr, serviceSize), serviceName: vm._mem.read(serviceNamePtr, serviceNameSize),
          method: vm._mem.read(methodPtr, methodSize), initialMetadata,
        },
        vm,
      );
      vm._mem.writeU32(retTokenPtr, stream.token);
      vm._startGrpcStream(stream);
      return Ok;
    },

    proxy_grpc_send(token: number, msgPtr: number, msgSize: number, endStream: number): number {
      const t = vm._grpcLive.get(token >>> 0);
      if (!t) return NotFound;
      if (!(t instanceof GrpcStream) || t.closedByFilter) return BadArgument;
      const msg = vm._mem.read(msgPtr, msgSize);
      t.sent.push(msg);
      if (endStream !== 0) t.closedByFilter = true;
      t.onSend?.(msg, endStream !== 0);
      return Ok;
    },

    proxy_grpc_cancel(token: number): number {
      const t = vm._grpcLive.get(token >>> 0);
      if (!t) return NotFound;
      if (t instanceof GrpcCall) t.markCancelled();
      else t.cancelled = true;
      vm.grpcForget(t.token);
      return Ok;
    },

    /** Calls: same as cancel (Envoy). Streams: the module half-closes; it can still receive. */
    proxy_grpc_close(token: number): number {
      const t = vm._grpcLive.get(token >>> 0);
      if (!t) return NotFound;
      if (t instanceof GrpcCall) {
        t.markCancelled();
        vm.grpcForget(t.token);
      } else {
        t.closedByFilter = true;
      }
      return Ok;
    },
  };

  function readMetadata(ptr: number, size: number): HeaderMap | undefined {
    const pairs = deserializePairs(vm._mem.view(ptr, size));
    return pairs ? HeaderMap.fromPairs(pairs) : undefined;
  }

  // Pointer errors become InvalidMemoryAccess; anything else (a trap inside
  // proxy_on_memory_allocate, an exception from a handler) propagates to _invoke.
  const wrapped: Record<string, HostFunction> = {};
  for (const [name, f] of Object.entries(fns)) {
    wrapped[name] = (...args) => {
      try {
        return f(...args);
      } catch (e) {
        if (e instanceof MemoryAccessError) {
          vm._hostLog(LogLevel.Warn, `${name}: ${e.message}`);
          return InvalidMemoryAccess;
        }
        throw e;
      }
    };
  }
  return wrapped;
}
