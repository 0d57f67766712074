// The proxy-wasm host functions on a HostEnv built by hand (a bare linear memory, no module, no
// VM): the ABI rules a module relies on about which context and which buffers a call sees, and
// what the gRPC calls accept. The same functions under a real module are test/unit/wasmhost.test.ts.
import { describe, expect, it } from "vitest";
import { BufferType, GrpcStatus, MapType, MetricType, WasmResult } from "../../control-plane/src/wasmhost/abi.js";
import { ManualClock } from "../../control-plane/src/wasmhost/clock.js";
import { ContextTable, RootContext } from "../../control-plane/src/wasmhost/contexts.js";
import type { GrpcDispatch } from "../../control-plane/src/wasmhost/grpc.js";
import { GrpcTable } from "../../control-plane/src/wasmhost/grpc-table.js";
import { type CallbackBuffers, createHostFunctions, type HostEnv } from "../../control-plane/src/wasmhost/host-functions.js";
import { HttpStream } from "../../control-plane/src/wasmhost/http-stream.js";
import { GuestMemory } from "../../control-plane/src/wasmhost/memory.js";
import { PropertyStore } from "../../control-plane/src/wasmhost/properties.js";
import { SharedData } from "../../control-plane/src/wasmhost/shared-data.js";
import { MetricIds, Stats } from "../../control-plane/src/wasmhost/stats.js";
import { VmLog } from "../../control-plane/src/wasmhost/vm-log.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const { Ok, NotFound, BadArgument } = WasmResult;

/** Host functions over one page of memory: inputs at [0, 32 KiB), the guest "allocator" above. */
function bareHost() {
  const memory = new WebAssembly.Memory({ initial: 1 });
  let top = 32 * 1024;
  const mem = new GuestMemory(memory, (n) => ((top += n), top - n));
  const contexts = new ContextTable();
  const callback: CallbackBuffers = {};
  const dispatch: GrpcDispatch = { grpcInitialMetadata() {}, grpcReceive() {}, grpcTrailingMetadata() {}, grpcClose() {}, grpcForget: (t) => grpc.forget(t) };
  const grpc = new GrpcTable(dispatch, undefined);
  const env: HostEnv = {
    memory: () => mem,
    contexts,
    callback,
    log: new VmLog(0, 100),
    clock: new ManualClock(),
    vmConfig: utf8("vm-config"),
    properties: new PropertyStore(),
    shared: new SharedData(),
    vmId: "graylane",
    stats: new Stats(),
    metricIds: new MetricIds(),
    grpc,
    foreignFunction: () => undefined,
    foreignCalls: [],
    setTickPeriod() {},
    done() {},
  };
  const fns = createHostFunctions(env);
  const root = new RootContext(contexts.nextId());
  contexts.add(root);
  const stream = new HttpStream({ invoke: () => undefined, forgetContext: (id) => contexts.delete(id) }, contexts.nextId());
  contexts.add(stream);
  contexts.current = root;

  // Arguments are written from 1024 up; 0..1023 hold the out-parameters.
  let at = 1024;
  const put = (s: string | Uint8Array): [number, number] => {
    const b = typeof s === "string" ? utf8(s) : s;
    new Uint8Array(memory.buffer).set(b, at);
    at += b.length;
    return [at - b.length, b.length];
  };
  const u32 = (ptr: number) => new DataView(memory.buffer).getUint32(ptr, true);
  /** The bytes a call returned through (retPtrPtr = 0, retSizePtr = 4). */
  const returned = () => new Uint8Array(memory.buffer, u32(0), u32(4)).slice();
  return { env, fns, root, stream, callback, grpc, put, u32, returned };
}

describe("host functions: the effective context", () => {
  it("header maps are the effective stream's; none from the root context; an unknown id changes nothing", () => {
    const { fns, stream, put } = bareHost();
    const name = put("x-lane");
    const value = put("canary");
    expect(fns.proxy_add_header_map_value!(MapType.RequestHeaders, ...name, ...value)).toBe(BadArgument);

    expect(fns.proxy_set_effective_context!(stream.id)).toBe(Ok);
    expect(fns.proxy_add_header_map_value!(MapType.RequestHeaders, ...name, ...value)).toBe(Ok);
    expect(stream.requestHeader("x-lane")).toBe("canary");

    expect(fns.proxy_set_effective_context!(999)).toBe(BadArgument);
    expect(fns.proxy_get_header_map_value!(MapType.RequestHeaders, ...name, 0, 4)).toBe(Ok);
    expect(fns.proxy_get_header_map_value!(MapType.ResponseHeaders, ...name, 0, 4)).toBe(NotFound);
  });

  it("an HTTP body can be edited only from its stream", () => {
    const { fns, stream, put } = bareHost();
    const data = put("hello");
    expect(fns.proxy_set_buffer_bytes!(BufferType.HttpRequestBody, 0, 0, ...data)).toBe(BadArgument);
    fns.proxy_set_effective_context!(stream.id);
    expect(fns.proxy_set_buffer_bytes!(BufferType.HttpRequestBody, 0, 0, ...data)).toBe(Ok);
    expect(text(stream.requestBody)).toBe("hello");
  });
});

describe("host functions: buffers of a callback", () => {
  it("the plugin configuration is readable only while on_configure runs; the VM configuration always", () => {
    const { fns, callback, returned, u32 } = bareHost();
    expect(fns.proxy_get_buffer_status!(BufferType.PluginConfiguration, 0, 4)).toBe(NotFound);
    expect(fns.proxy_get_buffer_bytes!(BufferType.VmConfiguration, 0, 100, 0, 4)).toBe(Ok);
    expect(text(returned())).toBe("vm-config");

    callback.pluginConfig = utf8('{"edge":true}');
    expect(fns.proxy_get_buffer_status!(BufferType.PluginConfiguration, 8, 12)).toBe(Ok);
    expect(u32(8)).toBe(13);
    expect(fns.proxy_get_buffer_bytes!(BufferType.PluginConfiguration, 2, 4, 0, 4)).toBe(Ok);
    expect(text(returned())).toBe("edge");
    expect(fns.proxy_get_buffer_bytes!(BufferType.PluginConfiguration, 14, 1, 0, 4)).toBe(BadArgument);
    callback.pluginConfig = undefined;
    expect(fns.proxy_get_buffer_bytes!(BufferType.PluginConfiguration, 0, 1, 0, 4)).toBe(NotFound);
  });
});

describe("host functions: gRPC", () => {
  it("send refuses unary calls, unknown tokens and half-closed streams; cancel forgets the token", () => {
    const { fns, grpc, put, u32 } = bareHost();
    const cluster = put("graylane");
    const service = put("graylane.v1.RuleDiscovery");
    const method = put("StreamRules");
    const msg = put("m");
    expect(fns.proxy_grpc_stream!(...cluster, ...service, ...method, 0, 0, 16)).toBe(Ok);
    const streamToken = u32(16);
    expect(fns.proxy_grpc_call!(...cluster, ...service, ...method, 0, 0, ...msg, 1000, 16)).toBe(Ok);
    const callToken = u32(16);
    expect(grpc.streams[0]).toMatchObject({ token: streamToken, service: "graylane", serviceName: "graylane.v1.RuleDiscovery", method: "StreamRules" });

    expect(fns.proxy_grpc_send!(callToken, ...msg, 0)).toBe(BadArgument);
    expect(fns.proxy_grpc_send!(4242, ...msg, 0)).toBe(NotFound);
    expect(fns.proxy_grpc_send!(streamToken, ...msg, 1)).toBe(Ok); // end_stream: half-closed
    expect(fns.proxy_grpc_send!(streamToken, ...msg, 0)).toBe(BadArgument);
    expect(text(grpc.streams[0]!.sent[0]!)).toBe("m");

    expect(fns.proxy_grpc_cancel!(callToken)).toBe(Ok);
    expect(grpc.calls[0]!.cancelled).toBe(true);
    expect(fns.proxy_grpc_cancel!(callToken)).toBe(NotFound);
  });

  it("proxy_get_status reads the status of the last gRPC callback", () => {
    const { fns, grpc, returned, u32 } = bareHost();
    grpc.status = { code: GrpcStatus.Unavailable, message: "no healthy upstream" };
    expect(fns.proxy_get_status!(8, 0, 4)).toBe(Ok);
    expect(u32(8)).toBe(GrpcStatus.Unavailable);
    expect(text(returned())).toBe("no healthy upstream");
  });
});

describe("host functions: metric ids", () => {
  it("one id per metric; a name defined again with another type is BadArgument; unknown ids are NotFound", () => {
    const { fns, env, put, u32 } = bareHost();
    const name = put("graylane.requests");
    expect(fns.proxy_define_metric!(MetricType.Counter, ...name, 8)).toBe(Ok);
    const id = u32(8);
    expect(fns.proxy_define_metric!(MetricType.Counter, ...name, 12)).toBe(Ok);
    expect(u32(12)).toBe(id);
    expect(fns.proxy_define_metric!(MetricType.Gauge, ...name, 12)).toBe(BadArgument);
    expect(fns.proxy_increment_metric!(id, 3n)).toBe(Ok);
    expect(env.stats.get("graylane.requests")!.value).toBe(3n);
    expect(fns.proxy_increment_metric!(id + 1, 1n)).toBe(NotFound);
  });
});
