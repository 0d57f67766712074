// One instance of a proxy-wasm module with its root context: what Envoy runs per worker thread.
//
// Threading model: a WasmVm is single-threaded and non-re-entrant, like Envoy's. Every call into
// the module goes through invoke(), which sets the effective context, turns traps into
// WasmTrapError (marking the VM failed for good) and, once the outermost call returns, runs the
// callbacks that were requested while the module was busy (gRPC answers given from a handler).
//
// The host functions, HTTP streams and gRPC objects never see the VM: each gets the narrow
// interface it needs (HostEnv, StreamHost, GrpcDispatch), built here from the VM's parts.
import { GrpcStatus, LogLevel } from "./abi.js";
import { type Bytes, EMPTY, toBytes } from "./bytes.js";
import { type Clock, RealClock } from "./clock.js";
import { type Context, ContextTable, RootContext } from "./contexts.js";
import { VmFailedError, WasmTrapError } from "./errors.js";
import { GrpcCall, type GrpcDispatch, type GrpcHandler, GrpcStream } from "./grpc.js";
import { GrpcTable } from "./grpc-table.js";
import { CallCounter } from "./call-counter.js";
import { type CallbackBuffers, createHostFunctions, type HostEnv } from "./host-functions.js";
import { HttpStream, type HttpStreamOptions, type StreamHost } from "./http-stream.js";
import { GuestMemory, MemoryAccessError } from "./memory.js";
import { compileFilterModule, type FilterModule } from "./module.js";
import { PropertyStore, type PropertyRecord, type PropertyValue } from "./properties.js";
import { SharedData } from "./shared-data.js";
import { type Metric, MetricIds, Stats } from "./stats.js";
import { type LogEntry, VmLog } from "./vm-log.js";

export { type Context, RootContext } from "./contexts.js";
export type { LogEntry } from "./vm-log.js";

/** A foreign function the module may call by name; returns the bytes handed back (none by default). */
export type ForeignFunction = (args: Bytes, vm: WasmVm) => Bytes | string | void;

export interface VmOptions {
  /** Shared data store; pass one object to every VM of the same "Envoy process". Default: a new one. */
  shared?: SharedData;
  /** Default: the real wall clock. */
  clock?: Clock;
  /** Envoy's vm_id: the shared-data namespace. Default "". */
  vmId?: string;
  /** The VM configuration (VmConfiguration buffer, size passed to proxy_on_vm_start). Default empty. */
  vmConfig?: string | Bytes;
  /** Properties by dotted path; see properties.ts for encodings. plugin_vm_id defaults to vmId. */
  properties?: PropertyRecord;
  foreignFunctions?: Readonly<Record<string, ForeignFunction>>;
  grpc?: GrpcHandler;
  /** Metric store; pass one to several VMs to share it like Envoy's stats. Default: one per VM. */
  stats?: Stats;
  /** proxy_get_log_level, and the least level recorded in `logs`. Default 0 (trace: everything). */
  logLevel?: number;
  /** `logs` keeps (at least) the most recent maxLogs entries. Default 10 000. */
  maxLogs?: number;
  /** Called for every recorded log entry (e.g. to forward to a console). */
  onLog?: (entry: LogEntry) => void;
  /** Count host calls and hook crossings per hook into `calls` (tests that pin them; off by default). */
  countCalls?: boolean;
}

type ExportFn = (...args: Array<number | bigint>) => number | bigint | undefined;

export class WasmVm {
  readonly vmId: string;
  readonly clock: Clock;
  readonly shared: SharedData;
  readonly stats: Stats;
  /** VM-level properties (streams may shadow them). */
  readonly properties: PropertyStore;
  readonly vmConfig: Bytes;
  readonly logLevel: number;
  readonly logs: LogEntry[];
  /** Host calls and hook crossings per hook, with VmOptions.countCalls. */
  readonly calls: CallCounter | undefined;
  readonly foreignCalls: Array<{ name: string; args: Bytes }> = [];
  /** Every unary call the module started, in order. */
  readonly grpcCalls: GrpcCall[];
  /** Every stream the module opened, in order. */
  readonly grpcStreams: GrpcStream[];
  /** Import names the module declares that this host does not implement (stubbed: Unimplemented). */
  readonly stubbedImports: string[] = [];
  /** The last proxy_set_tick_period_milliseconds (0: no tick requested). */
  tickPeriodMs = 0;
  /** The module called proxy_done (root context finished its pending work). */
  doneCalled = false;

  instance!: WebAssembly.Instance;
  exports!: WebAssembly.Exports;

  private memory: GuestMemory | undefined;
  private readonly contexts = new ContextTable();
  private readonly callback: CallbackBuffers = {};
  private readonly log: VmLog;
  private readonly grpc: GrpcTable;
  private readonly metricIds = new MetricIds();
  private readonly foreign: Readonly<Record<string, ForeignFunction>>;
  private root: RootContext | undefined;
  private vmStarted = false;
  private failure: Error | undefined;
  private depth = 0;
  private readonly deferred: Array<() => void> = [];
  private readonly fns = new Map<string, ExportFn | null>();

  private constructor(readonly module: FilterModule, opts: VmOptions) {
    this.vmId = opts.vmId ?? "";
    this.clock = opts.clock ?? new RealClock();
    this.shared = opts.shared ?? new SharedData();
    this.stats = opts.stats ?? new Stats();
    this.vmConfig = opts.vmConfig === undefined ? EMPTY : toBytes(opts.vmConfig);
    this.logLevel = opts.logLevel ?? LogLevel.Trace;
    this.log = new VmLog(this.logLevel, Math.max(1, opts.maxLogs ?? 10_000), opts.onLog);
    this.logs = this.log.entries;
    this.properties = new PropertyStore({ plugin_vm_id: this.vmId, ...(opts.properties ?? {}) });
    this.foreign = opts.foreignFunctions ?? {};
    this.grpc = new GrpcTable(this.dispatch, opts.grpc);
    this.grpcCalls = this.grpc.calls;
    this.grpcStreams = this.grpc.streams;
    this.calls = opts.countCalls ? new CallCounter() : undefined;
  }

  /**
   * Instantiates `mod` with this host's imports and runs `_initialize` when exported. `env`
   * functions the host does not know are stubbed (they return Unimplemented and log), so loading
   * never fails on them; imports from any other module, and non-function imports (memory, tables,
   * globals), are refused.
   */
  static async create(mod: FilterModule | WebAssembly.Module | Uint8Array, opts: VmOptions = {}): Promise<WasmVm> {
    const fm: FilterModule =
      mod instanceof WebAssembly.Module
        ? { module: mod, imports: WebAssembly.Module.imports(mod), exports: WebAssembly.Module.exports(mod), byteLength: 0 }
        : mod instanceof Uint8Array
          ? await compileFilterModule(mod)
          : mod;
    if (!fm.exports.some((e) => e.name === "proxy_abi_version_0_2_1")) {
      throw new Error("not a proxy-wasm 0.2.1 module: it does not export proxy_abi_version_0_2_1");
    }
    const vm = new WasmVm(fm, opts);
    const host = createHostFunctions(vm.hostEnv());
    const imports: Record<string, Record<string, WebAssembly.ImportValue>> = { env: {} };
    for (const imp of fm.imports) {
      if (imp.module !== "env") {
        throw new Error(`module imports ${imp.module}.${imp.name}; a proxy-wasm host only provides module "env"`);
      }
      const ns = imports.env;
      if (imp.kind !== "function") {
        throw new Error(`module imports ${imp.module}.${imp.name} (${imp.kind}); this host only provides functions`);
      }
      const fn = Object.prototype.hasOwnProperty.call(host, imp.name) ? host[imp.name] : undefined;
      const calls = vm.calls;
      if (fn && calls) {
        const name = imp.name;
        ns[name] = (...args: unknown[]) => { calls.host(name); return fn(...args); };
      } else if (fn) ns[imp.name] = fn;
      else {
        const name = `${imp.module}.${imp.name}`;
        vm.stubbedImports.push(name);
        ns[imp.name] = () => {
          vm.log.host(LogLevel.Warn, `module called ${name}, which this host does not implement: Unimplemented`);
          return 12; // WasmResult.Unimplemented
        };
      }
    }
    vm.instance = await WebAssembly.instantiate(fm.module, imports);
    vm.exports = vm.instance.exports;
    const memory = vm.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new Error("module does not export its memory as `memory`");
    const alloc = vm.fn("proxy_on_memory_allocate");
    const calls = vm.calls;
    vm.memory = new GuestMemory(memory, alloc
      ? calls ? (n) => { calls.intoModule("proxy_on_memory_allocate"); return Number(alloc(n)); } : (n) => Number(alloc(n))
      : undefined);
    for (const name of vm.stubbedImports) vm.log.host(LogLevel.Debug, `${name} is not implemented; calls return Unimplemented`);
    vm.invoke("_initialize", undefined, []);
    return vm;
  }

  // ---- public driving API ----

  /** true once a trap (or an exception thrown through the module) made the VM unusable. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** The error that failed the VM. */
  get failureReason(): Error | undefined {
    return this.failure;
  }

  get rootContextId(): number | undefined {
    return this.root?.id;
  }

  /**
   * First call: creates the root context (proxy_on_context_create(root, 0)), starts the VM
   * (proxy_on_vm_start with the VM configuration) and configures it (proxy_on_configure). Later
   * calls re-run proxy_on_configure on the same root context, as Envoy does on a config update.
   * Returns what the module returned (false also when proxy_on_vm_start refused).
   */
  configure(pluginConfig: string | Bytes = ""): boolean {
    const root = this.ensureRoot();
    if (!this.vmStarted) return false;
    const config = toBytes(pluginConfig);
    this.callback.pluginConfig = config;
    try {
      const r = this.invoke("proxy_on_configure", root, [root.id, config.length]);
      return r === undefined || Number(r) !== 0;
    } finally {
      this.callback.pluginConfig = undefined;
    }
  }

  /** proxy_on_tick on the root context (after failing gRPC calls whose deadline passed). */
  tick(): void {
    const root = this.requireRoot("tick()");
    this.checkGrpcDeadlines();
    this.invoke("proxy_on_tick", root, [root.id]);
  }

  /** Fails pending unary gRPC calls whose deadline has passed on this VM's clock (DEADLINE_EXCEEDED). */
  checkGrpcDeadlines(): void {
    const now = this.clock.nowNs();
    for (const t of this.grpc.liveTargets()) {
      if (t instanceof GrpcCall && t.deadlineNs !== undefined && t.deadlineNs <= now) {
        t.fail(GrpcStatus.DeadlineExceeded, "Deadline Exceeded");
      }
    }
  }

  /** A new HTTP context under the root context (proxy_on_context_create(id, root)). */
  newHttpStream(opts: HttpStreamOptions = {}): HttpStream {
    const root = this.requireRoot("newHttpStream()");
    const s = new HttpStream(this.streamHost, this.contexts.nextId(), opts);
    this.contexts.add(s);
    this.invoke("proxy_on_context_create", s, [s.id, root.id]);
    return s;
  }

  /** Calls the module's foreign-function hook on the root context (data readable as CallData). */
  callForeignFunctionHook(functionId: number, data: Bytes | string = EMPTY): void {
    const root = this.requireRoot("callForeignFunctionHook()");
    const bytes = toBytes(data);
    this.callback.callData = bytes;
    try {
      this.invoke("proxy_on_foreign_function", root, [root.id, functionId, bytes.length]);
    } finally {
      this.callback.callData = undefined;
    }
  }

  /**
   * Shuts the root context down like Envoy on plugin removal: proxy_on_done(root); when it returns
   * true, proxy_on_delete(root). Returns whether the root was deleted.
   */
  shutdown(): boolean {
    if (!this.root) return true;
    const root = this.root;
    const r = this.invoke("proxy_on_done", root, [root.id]);
    if (r !== undefined && Number(r) === 0 && !this.doneCalled) return false;
    this.invoke("proxy_on_delete", root, [root.id]);
    this.contexts.delete(root.id);
    this.root = undefined;
    return true;
  }

  setProperty(path: string, value: PropertyValue): void {
    this.properties.set(path, value);
  }

  // ---- observing ----

  logsAtLeast(level: number): string[] {
    return this.logs.filter((l) => l.level >= level).map((l) => l.message);
  }

  metric(name: string): Metric | undefined {
    return this.stats.get(name);
  }

  get metrics(): Map<string, Metric> {
    return this.stats.metrics;
  }

  /** Current size of the module's linear memory in bytes. */
  memoryBytes(): number {
    return this.memory?.byteLength ?? 0;
  }

  // ---- what the host functions, HTTP streams and gRPC objects get ----

  private hostEnv(): HostEnv {
    return {
      memory: () => {
        // A start function calling the host during instantiation: nothing to read or write yet.
        if (!this.memory) throw new MemoryAccessError("module memory is not available before instantiation completes");
        return this.memory;
      },
      contexts: this.contexts,
      callback: this.callback,
      log: this.log,
      clock: this.clock,
      vmConfig: this.vmConfig,
      properties: this.properties,
      shared: this.shared,
      vmId: this.vmId,
      stats: this.stats,
      metricIds: this.metricIds,
      grpc: this.grpc,
      foreignFunction: (name) => {
        const f = Object.prototype.hasOwnProperty.call(this.foreign, name) ? this.foreign[name] : undefined;
        return f && ((args: Bytes) => f(args, this));
      },
      foreignCalls: this.foreignCalls,
      setTickPeriod: (ms) => (this.tickPeriodMs = ms),
      done: () => (this.doneCalled = true),
    };
  }

  private readonly streamHost: StreamHost = {
    invoke: (name, ctx, args) => this.invoke(name, ctx, args),
    forgetContext: (id) => this.contexts.delete(id),
  };

  // ---- calling into the module ----

  private fn(name: string): ExportFn | undefined {
    let f = this.fns.get(name);
    if (f === undefined) {
      const e = this.exports?.[name];
      f = typeof e === "function" ? (e as ExportFn) : null;
      this.fns.set(name, f);
    }
    return f ?? undefined;
  }

  /**
   * Calls export `name` (when the module has it) with `ctx` as effective context.
   * Returns undefined when the export is absent.
   */
  private invoke(name: string, ctx: Context | undefined, args: Array<number | bigint>): number | bigint | undefined {
    if (this.failure) throw new VmFailedError(name, this.failure);
    const f = this.fn(name);
    if (!f) return undefined;
    if (this.depth > 0) {
      // Only reachable from host-side code run by a host function (a handler or foreign function
      // calling back into the VM). Envoy never re-enters a module; neither do we.
      throw new Error(`re-entrant call to ${name} while the module is running; call it after the current callback`);
    }
    const prev = this.contexts.current;
    this.contexts.current = ctx;
    this.depth++;
    this.log.beginCall();
    this.calls?.enter(name);
    let result: number | bigint | undefined;
    try {
      result = f(...args);
    } catch (e) {
      throw this.markFailed(name, e);
    } finally {
      this.calls?.leave();
      this.depth--;
      this.contexts.current = prev;
    }
    this.runDeferred();
    return result;
  }

  private markFailed(name: string, e: unknown): Error {
    const err = e instanceof Error ? e : new Error(String(e));
    const isTrap =
      e instanceof WebAssembly.RuntimeError ||
      err.name === "RuntimeError" ||
      (err instanceof RangeError && /call stack/i.test(err.message));
    const out = isTrap ? new WasmTrapError(name, err.message, [...this.log.criticalOfCall], { cause: e }) : err;
    this.failure = out;
    this.deferred.length = 0;
    if (isTrap) this.log.host(LogLevel.Critical, out.message);
    return out;
  }

  private runDeferred(): void {
    while (this.deferred.length > 0 && !this.failure) this.deferred.shift()!();
  }

  /** Runs `fn` now, or after the current call into the module returns. */
  private defer(fn: () => void): void {
    if (this.depth > 0) this.deferred.push(fn);
    else fn();
  }

  private ensureRoot(): RootContext {
    if (this.root) return this.root;
    const root = new RootContext(this.contexts.nextId());
    this.root = root;
    this.contexts.add(root);
    this.invoke("proxy_on_context_create", root, [root.id, 0]);
    const r = this.invoke("proxy_on_vm_start", root, [root.id, this.vmConfig.length]);
    this.vmStarted = r === undefined || Number(r) !== 0;
    if (!this.vmStarted) this.log.host(LogLevel.Error, "proxy_on_vm_start returned false; the VM will not be configured");
    return root;
  }

  private requireRoot(what: string): RootContext {
    if (!this.root) throw new Error(`${what} needs the root context: call configure() first`);
    return this.root;
  }

  // ---- GrpcDispatch: answers given by handlers, delivered when the module is idle ----

  private grpcContext(target: GrpcCall | GrpcStream): Context | undefined {
    if (target instanceof GrpcStream && target.cancelled) return undefined;
    // Envoy drops the callbacks of a context that is gone.
    return this.contexts.get(target.contextId);
  }

  /** Delivers a gRPC callback to the context that started the call, with `buffers` readable during it. */
  private deliver(target: GrpcCall | GrpcStream, buffers: CallbackBuffers, status: { code: number; message: string } | undefined, name: string, arg: number): void {
    this.defer(() => {
      const ctx = this.grpcContext(target);
      if (!ctx) return;
      Object.assign(this.callback, buffers);
      if (status) this.grpc.status = status;
      try {
        this.invoke(name, ctx, [ctx.id, target.token, arg]);
      } finally {
        for (const k of Object.keys(buffers) as Array<keyof CallbackBuffers>) this.callback[k] = undefined;
      }
    });
  }

  private readonly dispatch: GrpcDispatch = {
    grpcForget: (token) => this.grpc.forget(token),
    grpcInitialMetadata: (target, md) =>
      this.deliver(target, { grpcInitialMetadata: md }, undefined, "proxy_on_grpc_receive_initial_metadata", md.size),
    grpcReceive: (target, message) =>
      this.deliver(target, { grpcReceive: message }, { code: 0, message: "" }, "proxy_on_grpc_receive", message.length),
    grpcTrailingMetadata: (target, md) =>
      this.deliver(target, { grpcTrailingMetadata: md }, undefined, "proxy_on_grpc_receive_trailing_metadata", md.size),
    grpcClose: (target, status, message) => this.deliver(target, {}, { code: status, message }, "proxy_on_grpc_close", status),
  };
}
