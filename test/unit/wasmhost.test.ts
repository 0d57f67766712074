// The Node proxy-wasm host (control-plane/src/wasmhost) against a real module: a small
// AssemblyScript probe plugin (test/fixtures/probe-plugin/probe.ts, built by make), which reports
// what the host gave it as "x-probe-*" request headers.
import { beforeAll, describe, expect, it } from "vitest";
import { createHostFunctions } from "../../control-plane/src/wasmhost/host-functions.js";
import {
  type FilterModule, GrpcCall, HOST_FUNCTIONS, GrpcStream, HeaderMap, LogLevel, ManualClock, MetricType, SharedData, Stats,
  VmFailedError, type VmOptions, WasmResult, WasmTrapError, WasmVm, deserializePairs, encodeProperty, PropertyStore,
  loadFilterModule, serializePairs,
} from "../../control-plane/src/wasmhost/index.js";

// Built by make (test-wasm) from test/fixtures/probe-plugin/probe.ts.
const PROBE_WASM = "filter/build/test/probe.wasm";
const SERVICE_PATH = "xds.route_metadata.filter_metadata.graylane.service";
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const INVALID_UTF8 = new Uint8Array([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1]);

let mod: FilterModule;

beforeAll(async () => {
  mod = await loadFilterModule(PROBE_WASM);
});

const clock0 = 1_700_000_000_000_000_000n;

async function probe(opts: VmOptions = {}, config = "probe"): Promise<WasmVm> {
  const vm = await WasmVm.create(mod, {
    vmId: "graylane",
    clock: new ManualClock(clock0),
    vmConfig: "vm-config-1",
    properties: { "xds.listener_direction": 2, [SERVICE_PATH]: "mocka" },
    foreignFunctions: { clear_route_cache: () => utf8("cleared") },
    ...opts,
  });
  expect(vm.configure(config)).toBe(true);
  return vm;
}

function logged(vm: WasmVm): string[] {
  return vm.logs.map((l) => l.message);
}

describe("module loading", () => {
  it("lists imports and exports; only env functions", () => {
    expect(mod.byteLength).toBeGreaterThan(1000);
    expect(mod.imports.every((i) => i.module === "env" && i.kind === "function")).toBe(true);
    expect(mod.exports.map((e) => e.name)).toEqual(expect.arrayContaining(["proxy_abi_version_0_2_1", "_initialize", "memory"]));
  });

  it("the host implements exactly the documented env functions", () => {
    const implemented = Object.keys(createHostFunctions(undefined as never));
    expect(implemented.sort()).toEqual([...HOST_FUNCTIONS].sort());
  });

  it("refuses a module without proxy_abi_version_0_2_1", async () => {
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    await expect(loadFilterModule(empty)).rejects.toThrow(/does not export proxy_abi_version_0_2_1/);
    await expect(WasmVm.create(new WebAssembly.Module(empty))).rejects.toThrow(/proxy_abi_version_0_2_1/);
  });

  it("refuses a module importing from anything but env", async () => {
    // (import "wasi" "x" (func)) (func) (export "proxy_abi_version_0_2_1" (func 1))
    const str = (t: string) => [t.length, ...utf8(t)];
    const section = (id: number, body: number[]) => [id, body.length, ...body];
    const bytes = new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, [1, 0x60, 0, 0]),
      ...section(2, [1, ...str("wasi"), ...str("x"), 0x00, 0]),
      ...section(3, [1, 0]),
      ...section(7, [1, ...str("proxy_abi_version_0_2_1"), 0x00, 1]),
      ...section(10, [1, 2, 0, 0x0b]),
    ]);
    const m = await loadFilterModule(bytes);
    await expect(WasmVm.create(m)).rejects.toThrow(/wasi\.x.*only provides module "env"/);
  });

  it("stubs env imports it does not know: Unimplemented plus a log line", async () => {
    const vm = await probe({}, "stub");
    expect(vm.stubbedImports).toEqual(["env.proxy_made_up_function"]);
    expect(logged(vm)).toContain(`stub returned ${WasmResult.Unimplemented}`);
    expect(vm.logsAtLeast(LogLevel.Warn).join("\n")).toMatch(/proxy_made_up_function.*Unimplemented/);
  });
});

describe("configuration", () => {
  it("first configure starts the VM with its configuration; later ones re-run on_configure only", async () => {
    const vm = await probe({}, "first tick");
    expect(vm.rootContextId).toBe(1);
    expect(vm.tickPeriodMs).toBe(1000);
    expect(vm.configure("second")).toBe(true);
    expect(vm.configure("reject")).toBe(false);
    const msgs = logged(vm);
    expect(msgs.filter((m) => m.startsWith("probe vm start"))).toEqual(["probe vm start: vm-config-1"]);
    expect(msgs.filter((m) => m.startsWith("probe configured"))).toEqual([
      "probe configured: first tick", "probe configured: second", "probe configured: reject",
    ]);
  });

  it("a pointer outside linear memory is InvalidMemoryAccess, not a crash", async () => {
    const vm = await probe({}, "badptr");
    expect(logged(vm)).toContain(`bad pointer status ${WasmResult.InvalidMemoryAccess}`);
    expect(vm.logsAtLeast(LogLevel.Warn).join("\n")).toMatch(/proxy_log: guest memory access .* out of bounds/);
    expect(vm.failed).toBe(false);
  });

  it("streams need a root context", async () => {
    const vm = await WasmVm.create(mod, {});
    expect(() => vm.newHttpStream()).toThrow(/configure\(\) first/);
  });
});

describe("header map encoding", () => {
  it("serialises as count, lengths, then NUL-terminated names and values", () => {
    const bytes = serializePairs([[utf8("ab"), utf8("c")], [utf8(""), INVALID_UTF8]]);
    const expected = [
      2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0,
      0x61, 0x62, 0, 0x63, 0, 0, ...INVALID_UTF8, 0,
    ];
    expect([...bytes]).toEqual(expected);
    const back = deserializePairs(bytes)!;
    expect(back.map(([k, v]) => [[...k], [...v]])).toEqual([[[0x61, 0x62], [0x63]], [[], [...INVALID_UTF8]]]);
  });

  it("rejects malformed input, accepts empty as no pairs", () => {
    expect(deserializePairs(new Uint8Array())).toEqual([]);
    expect(deserializePairs(new Uint8Array([1, 0, 0]))).toBeNull();
    expect(deserializePairs(new Uint8Array([9, 0, 0, 0, 1, 0, 0, 0]))).toBeNull();
    const good = serializePairs([[utf8("k"), utf8("v")]]);
    expect(deserializePairs(good.subarray(0, good.length - 1))).toBeNull();
    const noNul = good.slice();
    noNul[13] = 0x41; // the NUL after the name
    expect(deserializePairs(noNul)).toBeNull();
  });

  it("HeaderMap: case-insensitive names, replace collapses, remove removes all", () => {
    const m = new HeaderMap([["X-A", "1"], ["x-a", "2"], ["b", "3"], ["X-A", "4"]]);
    expect(m.entries.map((e) => text(e.name))).toEqual(["x-a", "x-a", "b", "x-a"]);
    expect(text(m.get("X-a")!)).toBe("1");
    m.replace("x-A", "r");
    expect(m.toStringPairs()).toEqual([["x-a", "r"], ["b", "3"]]);
    m.remove("X-A");
    expect(m.toStringPairs()).toEqual([["b", "3"]]);
    expect(m.byteSize()).toBe(2);
  });
});

describe("HTTP streams through the module", () => {
  it("300 headers, invalid UTF-8 and a 16 KB value cross the ABI both ways unchanged", async () => {
    const vm = await probe();
    const big = utf8("v".repeat(16 * 1024 - 3) + "end");
    const headers: Array<[string, string | Uint8Array]> = [];
    for (let i = 0; i < 300; i++) headers.push([`x-filler-${i}`, `value-${i}`]);
    headers.push(["x-bad", INVALID_UTF8], ["x-probe-in", big], ["x-probe-mirror", "1"]);
    const before = vm.memoryBytes();
    const s = vm.newHttpStream();
    expect(s.callOnRequestHeaders(headers)).toBe(0);

    let bytes = 0;
    for (const [k, v] of headers) bytes += k.length + (typeof v === "string" ? v.length : v.length);
    expect(s.requestHeader("x-probe-count")).toBe("303");
    expect(s.requestHeader("x-probe-bytes")).toBe(String(bytes));
    // get_header_map_value allocated 16 KB in the module, which copied it into add_header_map_value.
    expect(s.requestHeader("x-probe-in-len")).toBe(String(16 * 1024));
    expect(s.requestHeaderBytes("x-probe-echo")).toEqual(big);
    expect(vm.memoryBytes()).toBeGreaterThan(before);
    // set_header_map_pairs with the module's copy of the map left the originals as they were.
    expect(s.requestHeaderBytes("x-bad")).toEqual(INVALID_UTF8);
    expect(s.requestHeaders.slice(0, 300)).toEqual(headers.slice(0, 300));
    expect(s.requestHeaders.length).toBeGreaterThanOrEqual(303);
  });

  it("replace, remove (case-insensitive), NotFound for a missing header", async () => {
    const vm = await probe();
    const s = vm.newHttpStream();
    s.callOnRequestHeaders([["x-probe-replace", "1"], ["X-Probe-Replace", "2"], ["x-probe-remove", "a"], ["X-PROBE-REMOVE", "b"]]);
    expect(s.requestHeaderValues("x-probe-replace")).toEqual(["replaced"]);
    expect(s.requestHeader("x-probe-remove")).toBeUndefined();
    expect(s.requestHeader("x-probe-absent-status")).toBe(String(WasmResult.NotFound));
  });

  it("response headers, then done/log/delete once each", async () => {
    const vm = await probe();
    const s = vm.newHttpStream();
    s.callOnRequestHeaders({ ":path": "/" });
    s.callOnResponseHeaders([[":status", "503"]]);
    expect(s.responseHeader("x-probe-saw-status")).toBe("503");
    s.complete();
    s.complete();
    expect(logged(vm).filter((m) => /^(done|log|delete) /.test(m))).toEqual([`done ${s.id}`, `log ${s.id}`, `delete ${s.id}`]);
    expect(() => s.callOnResponseHeaders({})).toThrow(/already complete/);
  });

  it("local responses are recorded", async () => {
    const vm = await probe();
    const s = vm.newHttpStream();
    expect(s.callOnRequestHeaders({ "x-probe-local": "1" })).toBe(1);
    expect(s.localResponse).toMatchObject({ status: 403, details: "probe_denied", headers: [["x-why", "probe"]], grpcStatus: -1 });
    expect(text(s.localResponse!.body)).toBe("nope");
  });
});

describe("properties", () => {
  it("strings and int64 by 0x00-separated path; per-stream values shadow the VM's", async () => {
    const vm = await probe();
    const s = vm.newHttpStream();
    s.callOnRequestHeaders({});
    expect(s.requestHeader("x-probe-direction")).toBe("2");
    expect(s.requestHeader("x-probe-service")).toBe("mocka");
    expect(s.requestHeader("x-probe-vm-id")).toBe("graylane");
    // A dotted path without separators is not found (as in Envoy), and the host says why.
    expect(s.requestHeader("x-probe-dotted-status")).toBe(String(WasmResult.NotFound));
    expect(vm.logsAtLeast(LogLevel.Warn).join("\n")).toMatch(/no 0x00 separators/);

    const t = vm.newHttpStream({ properties: { [SERVICE_PATH]: "mockb", "xds.listener_direction": 1n } });
    t.callOnRequestHeaders({});
    expect(t.requestHeader("x-probe-service")).toBe("mockb");
    expect(t.requestHeader("x-probe-direction")).toBe("1");
  });

  it("a missing property is NotFound", async () => {
    const vm = await probe({ properties: {} });
    const s = vm.newHttpStream();
    s.callOnRequestHeaders({});
    expect(s.requestHeader("x-probe-service-status")).toBe(String(WasmResult.NotFound));
    expect(s.requestHeader("x-probe-direction")).toBeUndefined();
  });

  it("reads a string map whole as proxy-wasm pairs, as Envoy answers for route metadata", () => {
    const props = new PropertyStore({ "xds.route_metadata.filter_metadata.graylane.service": "shop1-web", "xds.route_metadata.filter_metadata.graylane.lane": "base" });
    const key = (path: string) => String.fromCharCode(...new TextEncoder().encode(path.split(".").join("\0")));
    // The bytes Envoy 1.40 returned for this very metadata (read by a probe module in a real Envoy).
    const envoy = "0200000007000000090000000400000004000000736572766963650073686f70312d776562006c616e65006261736500";
    expect(Buffer.from(props.getWire(key("xds.route_metadata.filter_metadata.graylane"))!).toString("hex")).toBe(envoy);
    // Configured as an object: the same bytes, and each child still readable.
    const obj = new PropertyStore({ "xds.route_metadata.filter_metadata.graylane": { service: "shop1-web", lane: "base" } });
    expect(Buffer.from(obj.getWire(key("xds.route_metadata.filter_metadata.graylane"))!).toString("hex")).toBe(envoy);
    expect(new TextDecoder().decode(obj.getWire(key("xds.route_metadata.filter_metadata.graylane.lane"))!)).toBe("base");
    expect(obj.getWire(key("xds.route_metadata.filter_metadata.other"))).toBeUndefined();
  });

  it("encodes values as Envoy does", () => {
    expect([...encodeProperty(-2n)]).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect([...encodeProperty(258)]).toEqual([2, 1, 0, 0, 0, 0, 0, 0]);
    expect([...encodeProperty(true)]).toEqual([1]);
    expect([...encodeProperty("é")]).toEqual([0xc3, 0xa9]);
    expect(new DataView(encodeProperty(1.5).buffer).getFloat64(0, true)).toBe(1.5);
  });
});

describe("shared data", () => {
  it("is shared by every VM created with the same SharedData and vm_id", async () => {
    const shared = new SharedData();
    const a = await probe({ shared });
    const b = await probe({ shared });
    const other = await probe({ shared, vmId: "other" });
    const bump = (vm: WasmVm) => {
      const s = vm.newHttpStream();
      s.callOnRequestHeaders({});
      expect(s.requestHeader("x-probe-counter-set")).toBe("0");
      expect(s.requestHeader("x-probe-missing-status")).toBe(String(WasmResult.NotFound));
      return s.requestHeader("x-probe-counter");
    };
    expect([bump(a), bump(b), bump(a), bump(other)]).toEqual(["1", "2", "3", "1"]);
    expect(shared.getString("probe-counter", "graylane")).toBe("3");
    expect(shared.getString("probe-counter", "other")).toBe("1");
    expect(shared.keyCount("graylane")).toBe(1);
    expect(shared.keyCount()).toBe(2);
  });

  it("compare-and-swap: a stale cas is CasMismatch, the current one or 0 succeeds", async () => {
    const shared = new SharedData();
    const vm = await probe({ shared });
    const { cas } = shared.set("probe-cas-key", "seed", "graylane");
    const setWithCas = (c: number) => {
      const s = vm.newHttpStream();
      s.callOnRequestHeaders({ "x-probe-cas": String(c) });
      return Number(s.requestHeader("x-probe-cas-result"));
    };
    expect(setWithCas(cas + 1000)).toBe(WasmResult.CasMismatch);
    expect(shared.getString("probe-cas-key")).toBe("seed");
    expect(setWithCas(cas)).toBe(WasmResult.Ok);
    expect(shared.getString("probe-cas-key")).toBe("from-probe");
    expect(setWithCas(cas)).toBe(WasmResult.CasMismatch); // the set above moved the cas on
    expect(setWithCas(0)).toBe(WasmResult.Ok);
  });

  it("SharedData: cas starts at 1 and moves on every set; missing keys are undefined", () => {
    const shared = new SharedData();
    expect(shared.get("k")).toBeUndefined();
    expect(shared.set("k", "1", "vm")).toEqual({ result: WasmResult.Ok, cas: 1 });
    expect(shared.set("k", "2", "vm", 7)).toEqual({ result: WasmResult.CasMismatch, cas: 0 });
    expect(shared.set("k", "2", "vm", 1)).toEqual({ result: WasmResult.Ok, cas: 2 });
    expect(shared.set("j", "x", "vm", 99).result).toBe(WasmResult.Ok); // no check for a new key
    expect(shared.get("k")).toMatchObject({ cas: 2 });
    expect(shared.keys("vm").map(text).sort()).toEqual(["j", "k"]);
  });
});

describe("metrics, logs, time, foreign functions", () => {
  it("counters accumulate, gauges take the last record, histograms keep every value", async () => {
    const vm = await probe();
    for (const n of [1, 3, 2]) {
      const h: Record<string, string> = {};
      for (let i = 0; i < n; i++) h[`h${i}`] = "x";
      const s = vm.newHttpStream();
      s.callOnRequestHeaders(h);
      expect(s.requestHeader("x-probe-bad-increment")).toBe(String(WasmResult.BadArgument));
    }
    expect(vm.metric("probe.requests")).toMatchObject({ type: MetricType.Counter, value: 3n });
    expect(vm.metric("probe.headers")).toMatchObject({ type: MetricType.Gauge, value: 2n });
    expect(vm.metric("probe.sizes")).toMatchObject({ type: MetricType.Histogram, values: [42n, 42n, 42n] });
    expect([...vm.metrics.keys()].sort()).toEqual(["probe.headers", "probe.requests", "probe.sizes"]);
    expect(vm.metric("nope")).toBeUndefined();
  });

  it("a shared Stats adds up across VMs; proxy_get_metric reads the shared value", async () => {
    const stats = new Stats();
    const a = await probe({ stats });
    const b = await probe({ stats });
    a.newHttpStream().callOnRequestHeaders({});
    const s = b.newHttpStream();
    s.callOnRequestHeaders({});
    expect(s.requestHeader("x-probe-requests")).toBe("2");
    expect(stats.get("probe.requests")?.value).toBe(2n);
  });

  it("log level: reported to the module and filtering what is kept", async () => {
    const quiet = await probe({ logLevel: LogLevel.Info });
    const s = quiet.newHttpStream();
    s.callOnRequestHeaders({});
    expect(s.requestHeader("x-probe-log-level")).toBe("2");
    expect(quiet.logs.every((l) => l.level >= LogLevel.Info)).toBe(true);
    const loud = await probe();
    loud.newHttpStream().callOnRequestHeaders({});
    expect(loud.logsAtLeast(LogLevel.Debug)).toContain("request headers 0");
    expect(loud.logsAtLeast(LogLevel.Info)).not.toContain("request headers 0");
  });

  it("time comes from the clock", async () => {
    const clock = new ManualClock(clock0);
    const vm = await probe({ clock });
    const now = () => {
      const s = vm.newHttpStream();
      s.callOnRequestHeaders({});
      return BigInt(s.requestHeader("x-probe-now")!);
    };
    expect(now()).toBe(clock0);
    clock.advanceMs(5);
    expect(now()).toBe(clock0 + 5_000_000n);
    const real = await WasmVm.create(mod, {});
    real.configure("");
    const s = real.newHttpStream();
    s.callOnRequestHeaders({});
    const ms = Number(BigInt(s.requestHeader("x-probe-now")!) / 1_000_000n);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5_000);
  });

  it("foreign calls are recorded, configured or not", async () => {
    const vm = await probe();
    const s = vm.newHttpStream();
    s.callOnRequestHeaders({});
    expect(s.requestHeader("x-probe-foreign")).toBe("0");
    expect(s.requestHeader("x-probe-foreign-ret")).toBe("cleared");
    expect(s.requestHeader("x-probe-foreign-missing")).toBe(String(WasmResult.NotFound));
    expect(vm.foreignCalls.map((c) => [c.name, text(c.args)])).toEqual([["clear_route_cache", "probe-args"], ["no_such_function", ""]]);
  });

  it("memory allocation round trip through proxy_on_memory_allocate", async () => {
    const vm = await probe();
    const alloc = vm.exports.proxy_on_memory_allocate as (n: number) => number;
    const memory = vm.exports.memory as WebAssembly.Memory;
    const p = alloc(100_000);
    expect(p).toBeGreaterThan(0);
    expect(vm.memoryBytes()).toBeGreaterThanOrEqual(p + 100_000);
    new Uint8Array(memory.buffer, p, 3).set([1, 2, 3]);
    expect([...new Uint8Array(memory.buffer, p, 3)]).toEqual([1, 2, 3]);
  });
});

describe("traps", () => {
  it("an abort surfaces as WasmTrapError naming the export and the message; the VM is failed", async () => {
    const vm = await probe();
    const s = vm.newHttpStream();
    let err: unknown;
    try {
      s.callOnRequestHeaders({ "x-probe-trap": "1" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WasmTrapError);
    const trap = err as WasmTrapError;
    expect(trap.exportName).toBe("proxy_on_request_headers");
    expect(trap.trapMessage).toMatch(/unreachable/);
    expect(trap.message).toContain("probe trap requested");
    expect(vm.failed).toBe(true);
    expect(vm.logsAtLeast(LogLevel.Critical).join("\n")).toContain("probe abort: probe trap requested");
    expect(() => vm.newHttpStream()).toThrow(VmFailedError);
    expect(() => vm.tick()).toThrow(/failed earlier/);
  });
});

describe("gRPC", () => {
  it("a stream the module opens on tick: its messages out, ours in, close", async () => {
    const streams: GrpcStream[] = [];
    const vm = await probe({ grpc: { onStream: (st) => streams.push(st) } }, "tick");
    const root = vm.rootContextId!;
    vm.tick();
    expect(streams).toHaveLength(1);
    const st = streams[0];
    expect(vm.grpcStreams).toEqual([st]);
    expect(st).toMatchObject({ service: "probe-cluster", serviceName: "probe.v1.Echo", method: "Chat", contextId: root });
    expect(st.initialMetadata).toEqual([["x-probe-md", "tick"]]);
    expect(st.sent.map(text)).toEqual(["hello from probe 1"]);

    st.sendInitialMetadata({ "x-server": "s1" });
    st.send(utf8("pong"));
    expect(logged(vm)).toEqual(expect.arrayContaining([`grpc metadata ${st.token}: s1`, `grpc receive ${st.token} on ${root}: pong`]));

    const seen: string[] = [];
    st.onSend = (m, end) => seen.push(`${text(m)}${end ? " (end)" : ""}`);
    vm.tick();
    expect(seen).toEqual(["hello from probe 2"]);
    expect(st.close(0)).toBe(true);
    expect(logged(vm)).toContain(`grpc close ${st.token} status 0`);
    expect(st.send("late")).toBe(false);
    vm.tick(); // the probe opens a new one after the close
    expect(streams).toHaveLength(2);
    expect(streams[1].token).not.toBe(st.token);
  });

  it("answers given inside the handler are delivered after the module's call returns", async () => {
    const vm = await probe({ grpc: { onStream: (st) => st.send("early") } }, "tick");
    vm.tick();
    const msgs = logged(vm);
    const opened = msgs.findIndex((m) => m.startsWith("stream opened"));
    const received = msgs.findIndex((m) => m.endsWith(": early"));
    expect(opened).toBeGreaterThanOrEqual(0);
    expect(received).toBeGreaterThan(opened);
  });

  it("unary calls: success is on_grpc_receive only (as Envoy), failure and deadline are on_grpc_close", async () => {
    const clock = new ManualClock(clock0);
    const calls: GrpcCall[] = [];
    const vm = await probe({ clock, grpc: { onCall: (c) => calls.push(c) } }, "call");
    vm.tick();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ service: "probe-cluster", serviceName: "probe.v1.Echo", method: "Ping", timeoutMs: 1000 });
    expect(text(calls[0].message)).toBe("ping 1");
    expect(calls[0].respond(utf8("pong"))).toBe(true);
    expect(calls[0].respond(utf8("again"))).toBe(false);
    expect(logged(vm)).toContain(`grpc receive ${calls[0].token} on ${vm.rootContextId}: pong`);
    expect(logged(vm).some((m) => m.startsWith(`grpc close ${calls[0].token}`))).toBe(false);

    vm.tick();
    clock.advanceMs(1001);
    vm.tick(); // call 2's deadline passed: closed with DEADLINE_EXCEEDED before on_tick starts call 3
    expect(calls[1].state).toBe("failed");
    expect(logged(vm)).toContain(`grpc close ${calls[1].token} status 4`);
    expect(calls[2].fail(14, "unavailable")).toBe(true);
    expect(logged(vm)).toContain(`grpc close ${calls[2].token} status 14`);
    expect(vm.grpcCalls).toEqual(calls);
  });

  it("without a handler calls are accepted and stay pending", async () => {
    const vm = await probe({}, "call");
    vm.tick();
    expect(vm.grpcCalls).toHaveLength(1);
    expect(vm.grpcCalls[0].pending).toBe(true);
    expect(logged(vm)).toContain(`call started 0 token ${vm.grpcCalls[0].token}`);
  });
});

describe("the lane filter (filter/build/filter.wasm)", () => {
  it("loads, configures with {} and runs one request", async () => {
    const filter = await loadFilterModule("filter/build/filter.wasm");
    expect(filter.imports.every((i) => i.module === "env")).toBe(true);
    const vm = await WasmVm.create(filter, {
      vmId: "graylane",
      clock: new ManualClock(clock0),
      properties: { "xds.listener_direction": 2 },
      foreignFunctions: { clear_route_cache: () => new Uint8Array() },
    });
    expect(vm.configure("{}")).toBe(true);
    const s = vm.newHttpStream();
    expect(s.callOnRequestHeaders({ ":authority": "mocka", ":path": "/", ":method": "GET" })).toBe(0);
    expect(s.requestHeader(":authority")).toBe("mocka");
    expect(s.callOnResponseHeaders([[":status", "200"]])).toBe(0);
    s.complete();
    expect(vm.failed).toBe(false);
    expect(vm.logsAtLeast(LogLevel.Error)).toEqual([]);
  });
});
