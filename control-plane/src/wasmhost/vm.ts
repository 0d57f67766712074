// One instance of a proxy-wasm module with its root context: what Envoy runs per worker thread.
//
// Threading model: a WasmVm is single-threaded and non-re-entrant, like Envoy's. Every call into
// the module goes through _invoke(), which sets the effective context, turns traps into
// WasmTrapError (marking the VM failed for good) and, once the outermost call returns, runs the
// callbacks that were requested while the module was busy (gRPC answers given from a handler).
import { GrpcStatus, LogLevel } from "./abi.js";
import { type Bytes, EMPTY, toBytes } from "./bytes.js";
import { type Clock, RealClock } from "./clock.js";
import { VmFailedError, WasmTrapError } from "./errors.js";
import { GrpcCall, type GrpcDispatch, type GrpcHandler, GrpcStream } from "./grpc.js";
import type { HeaderMap } from "./header-map.js";
import { createHostFunctions } from "./host-functions.js";
import { HttpStream, type HttpStreamOptions } from "./http-stream.js";
import { GuestMemory, MemoryAccessError } from "./memory.js";
import { compileFilterModule, type FilterModule } from "./module.js";
import { PropertyStore, type PropertyRecord, type PropertyValue } from "./properties.js";
import { SharedData } from "./shared-data.js";
import { type Metric, Stats } from "./stats.js";

export interface LogEntry {
  level: number;
  message: string;
}

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
}

/** The root context (the plugin's configuration context). */
export class RootContext {
  readonly kind = "root";
  constructor(readonly id: number) {}
}

export type Context = RootContext | HttpStream;

/** Buffers and maps that exist only while one callback runs. */
interface CallbackState {
  pluginConfig?: Bytes;
  grpcReceive?: Bytes;
  grpcInitialMetadata?: HeaderMap;
  grpcTrailingMetadata?: HeaderMap;
  callData?: Bytes;
}

type ExportFn = (...args: Array<number | bigint>) => number | bigint | undefined;

export class WasmVm implements GrpcDispatch {
  readonly vmId: string;
  readonly clock: Clock;
  readonly shared: SharedData;
  readonly stats: Stats;
  /** VM-level properties (streams may shadow them). */
  readonly properties: PropertyStore;
  readonly vmConfig: Bytes;
  readonly logLevel: number;
  readonly logs: LogEntry[] = [];
  readonly foreignCalls: Array<{ name: string; args: Bytes }> = [];
  /** Every unary call the module started, in order. */
  readonly grpcCalls: GrpcCall[] = [];
  /** Every stream the module opened, in order. */
  readonly grpcStreams: GrpcStream[] = [];
  /** Import names the module declares that this host does not implement (stubbed: Unimplemented). */
  readonly stubbedImports: string[] = [];
  /** The last proxy_set_tick_period_milliseconds (0: no tick requested). */
  tickPeriodMs = 0;
  /** The module called proxy_done (root context finished its pending work). */
  doneCalled = false;

  instance!: WebAssembly.Instance;
  exports!: WebAssembly.Exports;

  /** @internal */ _memory: GuestMemory | undefined;
  /** @internal */ _current: Context | undefined;
  /** @internal */ _cb: CallbackState = {};
  /** @internal proxy_get_status: the status of the last gRPC callback */
  _status: { code: number; message: string } = { code: 0, message: "" };
  /** @internal */ readonly _contexts = new Map<number, Context>();
  /** @internal live gRPC calls/streams by token */
  readonly _grpcLive = new Map<number, GrpcCall | GrpcStream>();
  /** @internal */ readonly _grpcHandler: GrpcHandler | undefined;
  /** @internal */ readonly _foreign: Readonly<Record<string, ForeignFunction>>;

  private readonly maxLogs: number;
  private readonly onLog: ((e: LogEntry) => void) | undefined;
  private root: RootContext | undefined;
  private vmStarted = false;
  private nextContextId = 1;
  private nextGrpcToken = 1;
  private readonly metricIds = new Map<Metric, number>();
  private readonly metricsById: Metric[] = [];
  private failure: Error | undefined;
  private depth = 0;
  private readonly deferred: Array<() => void> = [];
  private criticalDuringCall: string[] = [];
  private readonly fns = new Map<string, ExportFn | null>();

  private constructor(readonly module: FilterModule, opts: VmOptions) {
    this.vmId = opts.vmId ?? "";
    this.clock = opts.clock ?? new RealClock();
    this.shared = opts.shared ?? new SharedData();
    this.stats = opts.stats ?? new Stats();
    this.vmConfig = opts.vmConfig === undefined ? EMPTY : toBytes(opts.vmConfig);
    this.logLevel = opts.logLevel ?? LogLevel.Trace;
    this.maxLogs = Math.max(1, opts.maxLogs ?? 10_000);
    this.onLog = opts.onLog;
    this.properties = new PropertyStore({ plugin_vm_id: this.vmId, ...(opts.properties ?? {}) });
    this._foreign = opts.foreignFunctions ?? {};
    this._grpcHandler = opts.grpc;
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
    const host = createHostFunctions(vm);
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
      if (fn) ns[imp.name] = fn;
      else {
        const name = `${imp.module}.${imp.name}`;
        vm.stubbedImports.push(name);
        ns[imp.name] = () => {
          vm._hostLog(LogLevel.Warn, `module called ${name}, which this host does not implement: Unimplemented`);
          return 12; // WasmResult.Unimplemented
        };
      }
    }
    vm.instance = await WebAssembly.instantiate(fm.module, imports);
    vm.exports = vm.instance.exports;
    const memory = vm.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new Error("module does not export its memory as `memory`");
    const alloc = vm.fn("proxy_on_memory_allocate");
    vm._memory = new GuestMemory(memory, alloc ? (n) => Number(alloc(n)) : undefined);
    for (const name of vm.stubbedImports) vm._hostLog(LogLevel.Debug, `${name} is not implemented; calls return Unimplemented`);
    vm._invoke("_initialize", undefined, []);
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
    this._cb.pluginConfig = config;
    try {
      const r = this._invoke("proxy_on_configure", root, [root.id, config.length]);
      return r === undefined || Number(r) !== 0;
    } finally {
      this._cb.pluginConfig = undefined;
    }
  }

  /** proxy_on_tick on the root context (after failing gRPC calls whose deadline passed). */
  tick(): void {
    const root = this.requireRoot("tick()");
    this.checkGrpcDeadlines();
    this._invoke("proxy_on_tick", root, [root.id]);
  }

  /** Fails pending unary gRPC calls whose deadline has passed on this VM's clock (DEADLINE_EXCEEDED). */
  checkGrpcDeadlines(): void {
    const now = this.clock.nowNs();
    for (const t of [...this._grpcLive.values()]) {
      if (t instanceof GrpcCall && t.deadlineNs !== undefined && t.deadlineNs <= now) {
        t.fail(GrpcStatus.DeadlineExceeded, "Deadline Exceeded");
      }
    }
  }

  /** A new HTTP context under the root context (proxy_on_context_create(id, root)). */
  newHttpStream(opts: HttpStreamOptions = {}): HttpStream {
    const root = this.requireRoot("newHttpStream()");
    const s = new HttpStream(this, this.nextContextId++, opts);
    this._contexts.set(s.id, s);
    this._invoke("proxy_on_context_create", s, [s.id, root.id]);
    return s;
  }

  /** Calls the module's foreign-function hook on the root context (data readable as CallData). */
  callForeignFunctionHook(functionId: number, data: Bytes | string = EMPTY): void {
    const root = this.requireRoot("callForeignFunctionHook()");
    const bytes = toBytes(data);
    this._cb.callData = bytes;
    try {
      this._invoke("proxy_on_foreign_function", root, [root.id, functionId, bytes.length]);
    } finally {
      this._cb.callData = undefined;
    }
  }

  /**
   * Shuts the root context down like Envoy on plugin removal: proxy_on_done(root); when it returns
   * true, proxy_on_delete(root). Returns whether the root was deleted.
   */
  shutdown(): boolean {
    if (!this.root) return true;
    const root = this.root;
    const r = this._invoke("proxy_on_done", root, [root.id]);
    if (r !== undefined && Number(r) === 0 && !this.doneCalled) return false;
    this._invoke("proxy_on_delete", root, [root.id]);
    this._contexts.delete(root.id);
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
    return this._memory?.byteLength ?? 0;
  }

  // ---- internals used by the host functions, HttpStream and gRPC objects ----

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
   * @internal Calls export `name` (when the module has it) with `ctx` as effective context.
   * Returns undefined when the export is absent.
   */
  _invoke(name: string, ctx: Context | undefined, args: Array<number | bigint>): number | bigint | undefined {
    if (this.failure) throw new VmFailedError(name, this.failure);
    const f = this.fn(name);
    if (!f) return undefined;
    if (this.depth > 0) {
      // Only reachable from host-side code run by a host function (a handler or foreign function
      // calling back into the VM). Envoy never re-enters a module; neither do we.
      throw new Error(`re-entrant call to ${name} while the module is running; call it after the current callback`);
    }
    const prev = this._current;
    this._current = ctx;
    this.depth++;
    this.criticalDuringCall = [];
    let result: number | bigint | undefined;
    try {
      result = f(...args);
    } catch (e) {
      throw this.markFailed(name, e);
    } finally {
      this.depth--;
      this._current = prev;
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
    const out = isTrap ? new WasmTrapError(name, err.message, this.criticalDuringCall, { cause: e }) : err;
    this.failure = out;
    this.deferred.length = 0;
    if (isTrap) this._hostLog(LogLevel.Critical, out.message);
    return out;
  }

  private runDeferred(): void {
    while (this.deferred.length > 0 && !this.failure) this.deferred.shift()!();
  }

  /** @internal Runs `fn` now, or after the current call into the module returns. */
  _defer(fn: () => void): void {
    if (this.depth > 0) this.deferred.push(fn);
    else fn();
  }

  /** @internal A message from the module. */
  _log(level: number, message: string): void {
    if (level < this.logLevel) return;
    if (level >= LogLevel.Critical) this.criticalDuringCall.push(message);
    this.record({ level, message });
  }

  /** @internal A message from the host itself (prefixed, so it is told apart from the module's). */
  _hostLog(level: number, message: string): void {
    if (level >= this.logLevel) this.record({ level, message: `wasmhost: ${message}` });
  }

  private record(entry: LogEntry): void {
    this.logs.push(entry);
    // Trim in batches so a long run stays O(1) amortised per entry.
    if (this.logs.length >= this.maxLogs * 2) this.logs.splice(0, this.logs.length - this.maxLogs);
    this.onLog?.(entry);
  }

  /** @internal */
  get _mem(): GuestMemory {
    // A start function calling the host during instantiation: nothing to read or write yet.
    if (!this._memory) throw new MemoryAccessError("module memory is not available before instantiation completes");
    return this._memory;
  }

  /** @internal */
  _forgetContext(id: number): void {
    this._contexts.delete(id);
  }

  /** @internal The id the module uses for `m` (the same metric always gets the same id in one VM). */
  _metricId(m: Metric): number {
    let id = this.metricIds.get(m);
    if (id === undefined) {
      this.metricsById.push(m);
      id = this.metricsById.length; // ids start at 1
      this.metricIds.set(m, id);
    }
    return id;
  }

  /** @internal */
  _metricById(id: number): Metric | undefined {
    return id >= 1 ? this.metricsById[id - 1] : undefined;
  }

  /** @internal */
  _nextGrpcToken(): number {
    return this.nextGrpcToken++;
  }

  /** @internal proxy_done */
  _done(): void {
    this.doneCalled = true;
  }

  private ensureRoot(): RootContext {
    if (this.root) return this.root;
    const root = new RootContext(this.nextContextId++);
    this.root = root;
    this._contexts.set(root.id, root);
    this._invoke("proxy_on_context_create", root, [root.id, 0]);
    const r = this._invoke("proxy_on_vm_start", root, [root.id, this.vmConfig.length]);
    this.vmStarted = r === undefined || Number(r) !== 0;
    if (!this.vmStarted) this._hostLog(LogLevel.Error, "proxy_on_vm_start returned false; the VM will not be configured");
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
    return this._contexts.get(target.contextId);
  }

  /** @internal */
  grpcForget(token: number): void {
    this._grpcLive.delete(token);
  }

  /** @internal */
  grpcInitialMetadata(target: GrpcStream, md: HeaderMap): void {
    this._defer(() => {
      const ctx = this.grpcContext(target);
      if (!ctx) return;
      this._cb.grpcInitialMetadata = md;
      try {
        this._invoke("proxy_on_grpc_receive_initial_metadata", ctx, [ctx.id, target.token, md.size]);
      } finally {
        this._cb.grpcInitialMetadata = undefined;
      }
    });
  }

  /** @internal */
  grpcReceive(target: GrpcCall | GrpcStream, message: Bytes): void {
    this._defer(() => {
      const ctx = this.grpcContext(target);
      if (!ctx) return;
      this._cb.grpcReceive = message;
      this._status = { code: 0, message: "" };
      try {
        this._invoke("proxy_on_grpc_receive", ctx, [ctx.id, target.token, message.length]);
      } finally {
        this._cb.grpcReceive = undefined;
      }
    });
  }

  /** @internal */
  grpcTrailingMetadata(target: GrpcStream, md: HeaderMap): void {
    this._defer(() => {
      const ctx = this.grpcContext(target);
      if (!ctx) return;
      this._cb.grpcTrailingMetadata = md;
      try {
        this._invoke("proxy_on_grpc_receive_trailing_metadata", ctx, [ctx.id, target.token, md.size]);
      } finally {
        this._cb.grpcTrailingMetadata = undefined;
      }
    });
  }

  /** @internal */
  grpcClose(target: GrpcCall | GrpcStream, status: number, message: string): void {
    this._defer(() => {
      const ctx = this.grpcContext(target);
      if (!ctx) return;
      this._status = { code: status, message };
      this._invoke("proxy_on_grpc_close", ctx, [ctx.id, target.token, status]);
    });
  }

  /** @internal Registers a call the module started and hands it to the handler. */
  _startGrpcCall(call: GrpcCall): void {
    this.grpcCalls.push(call);
    this._grpcLive.set(call.token, call);
    this._grpcHandler?.onCall?.(call);
  }

  /** @internal */
  _startGrpcStream(stream: GrpcStream): void {
    this.grpcStreams.push(stream);
    this._grpcLive.set(stream.token, stream);
    this._grpcHandler?.onStream?.(stream);
  }
}
