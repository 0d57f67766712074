// A proxy-wasm ABI 0.2.1 host for Node: runs a real proxy-wasm module (the lane filter) for unit
// tests and for the control plane's preview API. See vm.ts for the driving API.
export * from "./abi.js";
export { type Bytes, utf8, fromUtf8 } from "./bytes.js";
export { type Clock, ManualClock, RealClock } from "./clock.js";
export { VmFailedError, WasmTrapError } from "./errors.js";
export { GrpcCall, type GrpcCallState, type GrpcHandler, GrpcStream, type GrpcTarget } from "./grpc.js";
export { deserializePairs, type HeaderEntry, type HeaderInput, HeaderMap, serializePairs } from "./header-map.js";
export { HttpStream, type HttpStreamOptions, type LocalResponse, type StreamOp } from "./http-stream.js";
export { compileFilterModule, type FilterModule, loadFilterModule } from "./module.js";
export { encodeProperty, type PropertyRecord, PropertyStore, type PropertyValue } from "./properties.js";
export { type SharedEntry, SharedData } from "./shared-data.js";
export { type Metric, Stats } from "./stats.js";
export { type Context, type ForeignFunction, type LogEntry, RootContext, type VmOptions, WasmVm } from "./vm.js";
export { grpcBridge, type GrpcBridge } from "./grpc-bridge.js";
export { CallCounter, callTotals, type HookCalls } from "./call-counter.js";
