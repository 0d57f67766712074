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
import type { Clock } from "./clock.js";
import type { ContextTable } from "./contexts.js";
import { GrpcCall, GrpcStream } from "./grpc.js";
import type { GrpcTable } from "./grpc-table.js";
import { deserializePairs, HeaderMap } from "./header-map.js";
import { type GuestMemory, MemoryAccessError } from "./memory.js";
import { type PropertyStore, wirePropertyKey } from "./properties.js";
import type { SharedData } from "./shared-data.js";
import { type MetricIds, Stats } from "./stats.js";
import type { VmLog } from "./vm-log.js";

/** Buffers and maps that exist only while one callback runs (the VM sets and clears them). */
export interface CallbackBuffers {
  pluginConfig?: Bytes;
  grpcReceive?: Bytes;
  grpcInitialMetadata?: HeaderMap;
  grpcTrailingMetadata?: HeaderMap;
  callData?: Bytes;
}

/**
 * What the host functions work on: the parts of one VM, each as the small type it is, never the VM
 * itself. The VM builds one; nothing in it is read before the first host call.
 */
export interface HostEnv {
  /** The module's memory; throws MemoryAccessError before instantiation completes. */
  memory(): GuestMemory;
  readonly contexts: ContextTable;
  readonly callback: CallbackBuffers;
  readonly log: VmLog;
  readonly clock: Clock;
  readonly vmConfig: Bytes;
  /** VM-level properties (a stream's own shadow them). */
  readonly properties: PropertyStore;
  /** Shared data, in the space of `vmId`. */
  readonly shared: Pick<SharedData, "getRaw" | "setRaw">;
  readonly vmId: string;
  readonly stats: Stats;
  readonly metricIds: MetricIds;
  readonly grpc: GrpcTable;
  /** The foreign function `name` (bound to its VM), or undefined. */
  foreignFunction(name: string): ((args: Bytes) => Bytes | string | void) | undefined;
  /** Every proxy_call_foreign_function, in order (also those naming no function). */
  readonly foreignCalls: Array<{ name: string; args: Bytes }>;
  setTickPeriod(ms: number): void;
  /** proxy_done: the root context finished its pending work. */
  done(): void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type HostFunction = (...args: any[]) => number;

const { Ok, NotFound, BadArgument, SerializationFailure, InvalidMemoryAccess, Unimplemented, InternalFailure } = WasmResult;

export function createHostFunctions(env: HostEnv): Record<string, HostFunction> {
  const stream = () => env.contexts.stream;
  const mem = () => env.memory();

  function headerMap(type: number): HeaderMap | undefined {
    switch (type) {
      case MapType.RequestHeaders: return stream()?.requestHeaderMap;
      case MapType.RequestTrailers: return stream()?.requestTrailerMap;
      case MapType.ResponseHeaders: return stream()?.responseHeaderMap;
      case MapType.ResponseTrailers: return stream()?.responseTrailerMap;
      case MapType.GrpcReceiveInitialMetadata: return env.callback.grpcInitialMetadata;
      case MapType.GrpcReceiveTrailingMetadata: return env.callback.grpcTrailingMetadata;
      default: return undefined; // HTTP calls are not implemented
    }
  }

  function buffer(type: number): Bytes | undefined {
    switch (type) {
      case BufferType.HttpRequestBody: return stream()?.requestBody;
      case BufferType.HttpResponseBody: return stream()?.responseBody;
      case BufferType.GrpcReceiveBuffer: return env.callback.grpcReceive;
      case BufferType.VmConfiguration: return env.vmConfig;
      case BufferType.PluginConfiguration: return env.callback.pluginConfig;
      case BufferType.CallData: return env.callback.callData;
      default: return undefined;
    }
  }

  function property(key: string): Bytes | undefined {
    return stream()?.properties.getWire(key) ?? env.properties.getWire(key);
  }

  const warnedPaths = new Set<string>();

  const fns: Record<string, HostFunction> = {
    // ---- logging, time, ticks ----

    proxy_log(level: number, ptr: number, size: number): number {
      env.log.module(level, fromUtf8(mem().view(ptr, size)));
      return Ok;
    },

    proxy_get_log_level(retPtr: number): number {
      mem().writeU32(retPtr, env.log.level);
      return Ok;
    },

    proxy_get_current_time_nanoseconds(retPtr: number): number {
      mem().writeU64(retPtr, env.clock.nowNs());
      return Ok;
    },

    proxy_set_tick_period_milliseconds(ms: number): number {
      env.setTickPeriod(ms >>> 0);
      return Ok;
    },

    // ---- buffers ----

    proxy_get_buffer_bytes(type: number, start: number, maxSize: number, retPtrPtr: number, retSizePtr: number): number {
      const b = buffer(type);
      if (!b) return NotFound;
      const from = start >>> 0;
      if (from > b.length) return BadArgument;
      const to = Math.min(b.length, from + (maxSize >>> 0));
      mem().returnBytes(retPtrPtr, retSizePtr, b.subarray(from, to));
      return Ok;
    },

    proxy_get_buffer_status(type: number, retLenPtr: number, retFlagsPtr: number): number {
      const b = buffer(type);
      if (!b) return NotFound;
      mem().writeU32(retLenPtr, b.length);
      mem().writeU32(retFlagsPtr, 0);
      return Ok;
    },

    proxy_set_buffer_bytes(type: number, start: number, size: number, dataPtr: number, dataSize: number): number {
      const s = stream();
      if (!s || (type !== BufferType.HttpRequestBody && type !== BufferType.HttpResponseBody)) return BadArgument;
      const cur = type === BufferType.HttpRequestBody ? s.requestBody : s.responseBody;
      const from = Math.min(start >>> 0, cur.length);
      const to = Math.min(cur.length, from + (size >>> 0));
      const next = concat([cur.subarray(0, from), mem().read(dataPtr, dataSize), cur.subarray(to)]);
      if (type === BufferType.HttpRequestBody) s.requestBody = next;
      else s.responseBody = next;
      return Ok;
    },

    // ---- header maps ----

    proxy_get_header_map_pairs(type: number, retPtrPtr: number, retSizePtr: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      mem().returnBytes(retPtrPtr, retSizePtr, m.serialize());
      return Ok;
    },

    proxy_set_header_map_pairs(type: number, ptr: number, size: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      const pairs = deserializePairs(mem().view(ptr, size));
      if (!pairs) return SerializationFailure;
      m.setAll(pairs);
      return Ok;
    },

    proxy_get_header_map_value(type: number, keyPtr: number, keySize: number, retPtrPtr: number, retSizePtr: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      const v = m.get(mem().view(keyPtr, keySize));
      if (v === undefined) return NotFound;
      mem().returnBytes(retPtrPtr, retSizePtr, v);
      return Ok;
    },

    proxy_add_header_map_value(type: number, keyPtr: number, keySize: number, valPtr: number, valSize: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      m.add(mem().read(keyPtr, keySize), mem().read(valPtr, valSize));
      return Ok;
    },

    proxy_replace_header_map_value(type: number, keyPtr: number, keySize: number, valPtr: number, valSize: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      m.replace(mem().read(keyPtr, keySize), mem().read(valPtr, valSize));
      return Ok;
    },

    proxy_remove_header_map_value(type: number, keyPtr: number, keySize: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      m.remove(mem().view(keyPtr, keySize));
      return Ok;
    },

    proxy_get_header_map_size(type: number, retPtr: number): number {
      const m = headerMap(type);
      if (!m) return BadArgument;
      mem().writeU32(retPtr, m.byteSize());
      return Ok;
    },

    // ---- properties ----

    proxy_get_property(pathPtr: number, pathSize: number, retPtrPtr: number, retSizePtr: number): number {
      const path = mem().view(pathPtr, pathSize);
      const key = wirePropertyKey(path);
      const v = property(key);
      if (v === undefined) {
        // A common SDK-usage bug Envoy answers with a silent NotFound: say why, once per path.
        if (!key.includes("\0") && key.includes(".") && !warnedPaths.has(key)) {
          warnedPaths.add(key);
          env.log.host(LogLevel.Warn, `property path "${fromUtf8(path)}" has no 0x00 separators; Envoy will not find it either`);
        }
        return NotFound;
      }
      mem().returnBytes(retPtrPtr, retSizePtr, v);
      return Ok;
    },

    proxy_set_property(pathPtr: number, pathSize: number, valPtr: number, valSize: number): number {
      const key = wirePropertyKey(mem().view(pathPtr, pathSize));
      (stream()?.properties ?? env.properties).setWire(key, mem().read(valPtr, valSize));
      return Ok;
    },

    // ---- shared data and queues ----

    proxy_get_shared_data(keyPtr: number, keySize: number, retValPtrPtr: number, retValSizePtr: number, retCasPtr: number): number {
      const e = env.shared.getRaw(env.vmId, binaryKey(mem().view(keyPtr, keySize)));
      if (!e) return NotFound;
      mem().writeU32(retCasPtr, e.cas); // before allocating, so a bad pointer leaks nothing
      mem().returnBytes(retValPtrPtr, retValSizePtr, e.value);
      return Ok;
    },

    proxy_set_shared_data(keyPtr: number, keySize: number, valPtr: number, valSize: number, cas: number): number {
      const key = binaryKey(mem().view(keyPtr, keySize));
      return env.shared.setRaw(env.vmId, key, mem().read(valPtr, valSize), cas >>> 0);
    },

    proxy_register_shared_queue: () => Unimplemented,
    proxy_resolve_shared_queue: () => Unimplemented,
    proxy_enqueue_shared_queue: () => Unimplemented,
    proxy_dequeue_shared_queue: () => Unimplemented,

    // ---- metrics ----

    proxy_define_metric(type: number, namePtr: number, nameSize: number, retIdPtr: number): number {
      if (type !== MetricType.Counter && type !== MetricType.Gauge && type !== MetricType.Histogram) return BadArgument;
      const m = env.stats.define(fromUtf8(mem().view(namePtr, nameSize)), type);
      if (!m) return BadArgument; // the name exists with another type
      mem().writeU32(retIdPtr, env.metricIds.idOf(m));
      return Ok;
    },

    proxy_increment_metric(id: number, offset: bigint): number {
      const m = env.metricIds.get(id >>> 0);
      return m ? Stats.increment(m, BigInt(offset)) : NotFound;
    },

    proxy_record_metric(id: number, value: bigint): number {
      const m = env.metricIds.get(id >>> 0);
      return m ? Stats.record(m, BigInt(value)) : NotFound;
    },

    proxy_get_metric(id: number, retValuePtr: number): number {
      const m = env.metricIds.get(id >>> 0);
      if (!m) return NotFound;
      if (m.type === MetricType.Histogram) return BadArgument;
      mem().writeU64(retValuePtr, m.value);
      return Ok;
    },

    // ---- foreign functions ----

    proxy_call_foreign_function(namePtr: number, nameSize: number, argsPtr: number, argsSize: number, retPtrPtr: number, retSizePtr: number): number {
      const name = fromUtf8(mem().view(namePtr, nameSize));
      const args = mem().read(argsPtr, argsSize);
      env.foreignCalls.push({ name, args });
      const f = env.foreignFunction(name);
      if (!f) return NotFound;
      const out = f(args);
      // As proxy-wasm-cpp-host does (Envoy's clear_route_cache): a function without a result writes
      // nothing to the result slots; the module must not read stale ones.
      const bytes = out === undefined ? undefined : toBytes(out);
      if (bytes && bytes.length > 0) mem().returnBytes(retPtrPtr, retSizePtr, bytes);
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
      const pairs = deserializePairs(mem().view(headersPtr, headersSize));
      if (!pairs) return SerializationFailure;
      const headerMap = HeaderMap.fromPairs(pairs);
      s.localResponse = {
        status: status >>> 0,
        details: fromUtf8(mem().view(detailsPtr, detailsSize)),
        body: mem().read(bodyPtr, bodySize),
        headers: headerMap.toStringPairs(),
        headerMap,
        grpcStatus: grpcStatus | 0,
      };
      return Ok;
    },

    // ---- contexts ----

    proxy_set_effective_context(contextId: number): number {
      // Until the current export returns (the VM restores the previous context).
      return env.contexts.setEffective(contextId >>> 0) ? Ok : BadArgument;
    },

    proxy_done(): number {
      env.done();
      return Ok;
    },

    /** Status of the last gRPC callback: code (u32) and message (returned bytes). */
    proxy_get_status(retCodePtr: number, retMsgPtrPtr: number, retMsgSizePtr: number): number {
      mem().writeU32(retCodePtr, env.grpc.status.code);
      mem().returnBytes(retMsgPtrPtr, retMsgSizePtr, utf8(env.grpc.status.message));
      return Ok;
    },

    // ---- HTTP and gRPC callouts ----

    proxy_http_call(): number {
      env.log.host(LogLevel.Warn, "proxy_http_call is not implemented: Unimplemented");
      return Unimplemented;
    },

    proxy_grpc_call(
      servicePtr: number, serviceSize: number, serviceNamePtr: number, serviceNameSize: number,
      methodPtr: number, methodSize: number, mdPtr: number, mdSize: number,
      msgPtr: number, msgSize: number, timeoutMs: number, retTokenPtr: number,
    ): number {
      const ctx = env.contexts.current;
      if (!ctx) return InternalFailure;
      const initialMetadata = readMetadata(mdPtr, mdSize);
      if (!initialMetadata) return SerializationFailure;
      mem().readU32(retTokenPtr); // bounds check before anything is registered
      const call = new GrpcCall(
        {
          token: env.grpc.nextToken(), contextId: ctx.id,
          service: mem().read(servicePtr, serviceSize), serviceName: mem().read(serviceNamePtr, serviceNameSize),
          method: mem().read(methodPtr, methodSize), initialMetadata,
          message: mem().read(msgPtr, msgSize), timeoutMs: timeoutMs >>> 0, nowNs: env.clock.nowNs(),
        },
        env.grpc.dispatch,
      );
      mem().writeU32(retTokenPtr, call.token);
      env.grpc.startCall(call);
      return Ok;
    },

    proxy_grpc_stream(
      servicePtr: number, serviceSize: number, serviceNamePtr: number, serviceNameSize: number,
      methodPtr: number, methodSize: number, mdPtr: number, mdSize: number, retTokenPtr: number,
    ): number {
      const ctx = env.contexts.current;
      if (!ctx) return InternalFailure;
      const initialMetadata = readMetadata(mdPtr, mdSize);
      if (!initialMetadata) return SerializationFailure;
      mem().readU32(retTokenPtr);
      const stream = new GrpcStream(
        {
          token: env.grpc.nextToken(), contextId: ctx.id,
          service: mem().read(servicePtr, serviceSize), serviceName: mem().read(serviceNamePtr, serviceNameSize),
          method: mem().read(methodPtr, methodSize), initialMetadata,
        },
        env.grpc.dispatch,
      );
      mem().writeU32(retTokenPtr, stream.token);
      env.grpc.startStream(stream);
      return Ok;
    },

    proxy_grpc_send(token: number, msgPtr: number, msgSize: number, endStream: number): number {
      const t = env.grpc.get(token >>> 0);
      if (!t) return NotFound;
      if (!(t instanceof GrpcStream) || t.closedByFilter) return BadArgument;
      const msg = mem().read(msgPtr, msgSize);
      t.sent.push(msg);
      if (endStream !== 0) t.closedByFilter = true;
      t.onSend?.(msg, endStream !== 0);
      return Ok;
    },

    proxy_grpc_cancel(token: number): number {
      const t = env.grpc.get(token >>> 0);
      if (!t) return NotFound;
      if (t instanceof GrpcCall) t.markCancelled();
      else t.cancelled = true;
      env.grpc.forget(t.token);
      return Ok;
    },

    /** Calls: same as cancel (Envoy). Streams: the module half-closes; it can still receive. */
    proxy_grpc_close(token: number): number {
      const t = env.grpc.get(token >>> 0);
      if (!t) return NotFound;
      if (t instanceof GrpcCall) {
        t.markCancelled();
        env.grpc.forget(t.token);
      } else {
        t.closedByFilter = true;
      }
      return Ok;
    },
  };

  function readMetadata(ptr: number, size: number): HeaderMap | undefined {
    const pairs = deserializePairs(mem().view(ptr, size));
    return pairs ? HeaderMap.fromPairs(pairs) : undefined;
  }

  // Pointer errors become InvalidMemoryAccess; anything else (a trap inside
  // proxy_on_memory_allocate, an exception from a handler) propagates to the VM, which fails the call.
  const wrapped: Record<string, HostFunction> = {};
  for (const [name, f] of Object.entries(fns)) {
    wrapped[name] = (...args) => {
      try {
        return f(...args);
      } catch (e) {
        if (e instanceof MemoryAccessError) {
          env.log.host(LogLevel.Warn, `${name}: ${e.message}`);
          return InvalidMemoryAccess;
        }
        throw e;
      }
    };
  }
  return wrapped;
}
