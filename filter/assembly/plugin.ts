// Graylane lane filter: wiring between the proxy-wasm ABI (abi/) and the pure lane logic (lane/).
// Root context: configuration, RuleSet application, metrics, counters and their reports.
// Stream context: request headers in -> destination -> decision -> headers out; count at the end.
// Only the hooks the lane filter uses are exported: the host skips a hook the module does not
// export, so leaving out the body, trailer, metadata and L4 hooks saves Envoy a call into V8 per body
// chunk of every request and response, and leaving out on_done (always "done") one more per
// request. The ABI layer keeps every hook for other plugins.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_request_headers, proxy_on_response_headers, proxy_on_grpc_receive, proxy_on_grpc_close,
  proxy_on_log, proxy_on_delete,
} from "./abi/exports";
// Routed to by asconfig `use abort=... trace=...`; importing it makes the functions resolvable.
import "./abi/abort";

import { HttpContext, RootContext, setRootContextFactory } from "./abi/context";
import { Action, BufferType, LogLevel, MapType, MetricType, WasmResult } from "./abi/types";
import * as host from "./abi/host";
import { equalBytes, equalIgnoreCase, Scratch, startsWith, utf8 } from "./lane/bytes";
import { DIRECTION_AUTO, DIRECTION_INBOUND, configError, parsePluginConfig, PluginConfig } from "./lane/config";
import { buildRuleSet, CGroup, CRuleSet, FEATURES, ruleError } from "./lane/rules";
import { encodeRuleRequest, authorityFor, grpcServiceFor, NodeIdentity, RuleResponseView } from "./lane/discovery";
import { RequestView } from "./lane/request";
import { Decider, SOURCE_NAMES, SRC_BASE } from "./lane/decision";
import { SharedStore, TraceMemory } from "./lane/tracememory";
import { appendLaneMember, appendOtherMembers } from "./lane/propagation";
import { counterKey, Counters } from "./lane/counters";

const FILTER_VERSION = "0.1.0";

// traffic.proto Direction
const DIR_INBOUND: u32 = 1;
const DIR_OUTBOUND: u32 = 2;
const DIR_EDGE: u32 = 3;

const P_DIRECTION = utf8("xds\0listener_direction");
// The matched route's `graylane` metadata, whole: Envoy serialises a string map as proxy-wasm pairs,
// so one property read (the costliest host call the filter makes) gives `service` and `lane`.
const P_ROUTE_GRAYLANE = utf8("xds\0route_metadata\0filter_metadata\0graylane");
const K_SERVICE = utf8("service");
const K_LANE = utf8("lane");
const F_CLEAR_ROUTE_CACHE = utf8("clear_route_cache");
const H_BAGGAGE = utf8("baggage");
const H_DEFAULT_LANE = utf8("x-graylane-lane");
const H_DEFAULT_ROUTE = utf8("x-graylane-route");
const H_STATUS = utf8(":status");
const H_SET_COOKIE = utf8("set-cookie");
const TRAFFIC_SERVICE = utf8("graylane.v1.Traffic");
const TRAFFIC_REPORT = utf8("Report");
const RULES_SERVICE = utf8("graylane.v1.RuleDiscovery");
const STREAM_RULES = utf8("StreamRules");
const EMPTY = new Uint8Array(0);

function copyBytes(p: usize, l: usize): Uint8Array {
  const out = new Uint8Array(<i32>l);
  memory.copy(out.dataStart, p, l);
  return out;
}

/** Shared data through the host: process-wide per vm_id, seen by every worker's VM. */
class HostSharedStore extends SharedStore {
  get(keyPtr: usize, keyLen: usize): bool {
    if (host.getSharedData(keyPtr, keyLen) != WasmResult.Ok) return false;
    this.valPtr = host.retPtr;
    this.valLen = host.retLen;
    return true;
  }
  release(): void { host.freeRet(); }
  set(keyPtr: usize, keyLen: usize, valPtr: usize, valLen: usize): void {
    host.setSharedData(keyPtr, keyLen, valPtr, valLen, 0);
  }
}

const INSTANCE_SEQ = utf8("graylane/instance-seq");

/** The next number of a proxy-wide sequence (1, 2, …), by compare-and-swap; 0 if the host refuses. */
function claimInstanceNumber(): u32 {
  const buf = heap.alloc(4);
  let claimed: u32 = 0;
  for (let attempt = 0; attempt < 64 && claimed == 0; attempt++) {
    let next: u32 = 1;
    let cas: u32 = 0; // key not there yet: create it
    if (host.getSharedData(INSTANCE_SEQ.dataStart, <usize>INSTANCE_SEQ.byteLength) == WasmResult.Ok) {
      if (host.retLen == 4) next = load<u32>(host.retPtr) + 1;
      cas = host.retCas;
      host.freeRet();
    }
    store<u32>(buf, next);
    if (host.setSharedData(INSTANCE_SEQ.dataStart, <usize>INSTANCE_SEQ.byteLength, buf, 4, cas) == WasmResult.Ok) claimed = next;
  }
  heap.free(buf);
  return claimed;
}

function hex64(n: u64): string {
  const s = new Scratch();
  s.pushHex(n, 16);
  const out = String.UTF8.decodeUnsafe(s.ptr, s.len);
  heap.free(s.ptr);
  return out;
}

function splitmix64(x: u64): u64 {
  let z = x + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

class GroupMetrics {
  // [lane * 8 + source]
  ids: StaticArray<u32>;
  // counter name ids: group, per lane, per service
  groupName: u32 = 0;
  laneNames: StaticArray<u32>;
  serviceNames: StaticArray<u32>;
  constructor(g: CGroup, counters: Counters) {
    const nl = g.lanes.length;
    this.ids = new StaticArray<u32>(nl * 8);
    this.laneNames = new StaticArray<u32>(nl);
    this.serviceNames = new StaticArray<u32>(g.services.length);
    this.groupName = counters.names.id(g.nameString);
    for (let l = 0; l < nl; l++) {
      const lane = g.lanes[l];
      this.laneNames[l] = counters.names.id(lane.nameString);
      for (let s = 1; s < 8; s++) {
        this.ids[l * 8 + s] = host.defineMetric(MetricType.Counter,
          "graylane.group." + g.nameString + ".lane." + lane.nameString + ".source." + SOURCE_NAMES[s] + ".requests");
      }
    }
    for (let s = 0; s < g.services.length; s++) this.serviceNames[s] = counters.names.id(g.services[s].nameString);
  }
}

class LaneRoot extends RootContext {
  config: PluginConfig = new PluginConfig();
  rules: CRuleSet | null = null;
  metrics: Array<GroupMetrics> = [];
  localGroup: i32 = -1;
  localService: i32 = -1;
  readonly view: RequestView = new RequestView();
  readonly routeMeta: RouteMetadata = new RouteMetadata();
  readonly traces: TraceMemory = new TraceMemory(new HostSharedStore());
  readonly decider: Decider = new Decider(this.traces);
  readonly scratch: Scratch = new Scratch();
  readonly counters: Counters = new Counters();
  clusterBytes: Uint8Array = new Uint8Array(0);
  instanceId: string = "";
  instanceIdBytes: Uint8Array = new Uint8Array(0);
  nodeIdBytes: Uint8Array = new Uint8Array(0);
  readonly reportBuffer: Scratch = new Scratch();
  sequence: u64 = 0;
  reportInFlight: bool = false;
  lastReportMs: u64 = 0;
  grpcService: Uint8Array = new Uint8Array(0);
  readonly node: NodeIdentity = new NodeIdentity();
  versionBytes: Uint8Array = new Uint8Array(0);
  streamToken: u32 = 0;
  streamOpen: bool = false;
  nextConnectMs: u64 = 0;
  backoffMs: u32 = 0;
  readonly streamBuffer: Scratch = new Scratch();
  readonly response: RuleResponseView = new RuleResponseView();
  reportToken: u32 = 0;
  entropy: u64 = 0;
  pool: Array<LaneStream> = [];

  mOverrideIgnored: u32 = u32.MAX_VALUE;
  mUnknownLane: u32 = u32.MAX_VALUE;
  mNoDestination: u32 = u32.MAX_VALUE;
  mApplied: u32 = u32.MAX_VALUE;
  mRejected: u32 = u32.MAX_VALUE;
  mVersion: u32 = u32.MAX_VALUE;

  onConfigure(size: u32): bool {
    if (this.mApplied == u32.MAX_VALUE) {
      this.mOverrideIgnored = host.defineMetric(MetricType.Counter, "graylane.override_ignored");
      this.mUnknownLane = host.defineMetric(MetricType.Counter, "graylane.unknown_lane");
      this.mNoDestination = host.defineMetric(MetricType.Counter, "graylane.no_destination");
      this.mApplied = host.defineMetric(MetricType.Counter, "graylane.ruleset_applied");
      this.mRejected = host.defineMetric(MetricType.Counter, "graylane.ruleset_rejected");
    }
    let cfg: PluginConfig | null = null;
    if (size == 0) cfg = new PluginConfig();
    else if (host.getBufferBytes(BufferType.PluginConfiguration, 0, size) == WasmResult.Ok) {
      cfg = parsePluginConfig(host.retPtr, host.retLen);
      host.freeRet();
      if (cfg == null) {
        host.logError("graylane: plugin configuration refused: " + configError);
        return false;
      }
    } else {
      host.logError("graylane: plugin configuration unreadable");
      return false;
    }
    const c = changetype<PluginConfig>(cfg);
    if (c.ruleSet != null && !this.apply(c.ruleSet!, "plugin configuration")) return false;
    this.config = c;
    this.traces.slots = c.traceSlots;
    this.traces.ttlMillis = c.traceTtlMillis;
    this.clusterBytes = utf8(c.cluster);
    this.grpcService = grpcServiceFor(this.clusterBytes, utf8(authorityFor(c.cluster, c.authority)), c.token.length > 0 ? utf8("Bearer " + c.token) : new Uint8Array(0));
    this.entropy = splitmix64(host.nowNanos() ^ (<u64>this.id << 40));
    const n = this.node;
    n.id = utf8(c.nodeId);
    n.workload = utf8(c.workload);
    n.namespace = utf8(c.namespace);
    n.service = utf8(c.service);
    n.lane = utf8(c.lane);
    n.filterVersion = utf8(FILTER_VERSION);
    if (n.features.length == 0) for (let i = 0; i < FEATURES.length; i++) n.features.push(utf8(FEATURES[i]));
    this.nodeIdBytes = utf8(c.nodeId);
    this.resolveLocal();
    if (c.cluster.length > 0) host.setTickPeriodMillis(c.reportIntervalMs > 0 ? min(c.reportIntervalMs, 1000) : 1000);
    host.logInfo("graylane " + FILTER_VERSION + ": configured" + (c.edge ? " (edge)" : "") +
      (c.service.length > 0 ? ", local service " + c.service : "") + ", rules " + this.version());
    return true;
  }

  version(): string {
    const r = this.rules;
    return r == null ? "none" : r.version;
  }

  /** Applies RuleSet bytes, or refuses them (logged, counted) and keeps the current rules. */
  apply(bytes: Uint8Array, from: string): bool {
    const next = buildRuleSet(bytes);
    if (next == null) {
      host.incrementMetric(this.mRejected, 1);
      host.logError("graylane: RuleSet from " + from + " refused, keeping " + this.version() + ": " + ruleError);
      return false;
    }
    const metrics = new Array<GroupMetrics>();
    for (let i = 0; i < next.groups.length; i++) metrics.push(new GroupMetrics(next.groups[i], this.counters));
    this.rules = next;
    this.metrics = metrics;
    this.versionBytes = utf8(next.version);
    this.resolveLocal();
    host.incrementMetric(this.mApplied, 1);
    host.logInfo("graylane: RuleSet " + next.version + " applied from " + from + " (" + next.groups.length.toString() + " groups)");
    return true;
  }

  private resolveLocal(): void {
    this.localGroup = -1;
    this.localService = -1;
    const r = this.rules;
    if (r == null || this.config.service.length == 0) return;
    const name = utf8(this.config.service);
    // Not found (the service left every group): stay -1, never keep a previous RuleSet's indices.
    if (!this.findService(name.dataStart, <usize>name.byteLength)) return;
    this.localGroup = this.foundGroup;
    this.localService = this.foundService;
  }

  foundGroup: i32 = -1;
  foundService: i32 = -1;

  /** Finds a service by name in every group. */
  findService(p: usize, l: usize): bool {
    const groups = this.rules!.groups;
    for (let g = 0; g < groups.length; g++) {
      const services = unchecked(groups[g]).services;
      for (let s = 0; s < services.length; s++) {
        const n = unchecked(services[s]).name;
        if (equalBytes(n.dataStart, <usize>n.byteLength, p, l)) { this.foundGroup = g; this.foundService = s; return true; }
      }
    }
    return false;
  }

  /** Finds the service whose hosts include `host` (any case). */
  findHost(p: usize, l: usize): bool {
    const groups = this.rules!.groups;
    for (let g = 0; g < groups.length; g++) {
      const services = unchecked(groups[g]).services;
      for (let s = 0; s < services.length; s++) {
        const hosts = unchecked(services[s]).hosts;
        for (let h = 0; h < hosts.length; h++) {
          const n = unchecked(hosts[h]);
          if (equalIgnoreCase(p, l, n.dataStart, <usize>n.byteLength)) { this.foundGroup = g; this.foundService = s; return true; }
        }
      }
    }
    return false;
  }

  /** Edge only: the service with the longest `paths` prefix of the request path. */
  findPath(p: usize, l: usize): bool {
    const groups = this.rules!.groups;
    let best: usize = 0;
    let found = false;
    for (let g = 0; g < groups.length; g++) {
      const services = unchecked(groups[g]).services;
      for (let s = 0; s < services.length; s++) {
        const paths = unchecked(services[s]).paths;
        for (let i = 0; i < paths.length; i++) {
          const n = unchecked(paths[i]);
          const nl = <usize>n.byteLength;
          if ((nl > best || !found) && startsWith(p, l, n.dataStart, nl)) {
            best = nl; found = true; this.foundGroup = g; this.foundService = s;
          }
        }
      }
    }
    return found;
  }

  onTick(): void {
    if (this.clusterBytes.byteLength == 0) return;
    if (this.instanceIdBytes.byteLength == 0) this.assignInstanceId();
    const now = host.nowNanos() / 1000000;
    // The rule stream opens here, never in on_configure (Envoy also runs that in a throwaway VM).
    if (!this.streamOpen && now >= this.nextConnectMs) this.openStream(now);
    const every = <u64>this.config.reportIntervalMs;
    if (every > 0 && (this.lastReportMs == 0 || now - this.lastReportMs >= every)) {
      this.lastReportMs = now;
      this.report();
    }
  }

  /**
   * One instance id per root context for its whole life (a restart is a new instance), assigned at
   * the first tick, before the first report or stream. The worker VMs of one Envoy are identical
   * and Envoy configures them within the same clock reading, so the clock alone gave two VMs the
   * same id (their cumulative reports then overwrote each other's: counts lost or multiplied). A
   * number claimed by compare-and-swap in the proxy-wide shared data tells them apart; the time,
   * read on the VM's own worker thread, tells restarts apart.
   */
  private assignInstanceId(): void {
    this.entropy = splitmix64(this.entropy ^ host.nowNanos());
    const nodeId = this.config.nodeId;
    this.instanceId = (nodeId.length > 0 ? nodeId : "node") + "/" + claimInstanceNumber().toString() + "/" + hex64(this.entropy);
    this.instanceIdBytes = utf8(this.instanceId);
  }

  /** Sends the cumulative counters to the control plane (Traffic.Report), one call at a time. */
  report(): void {
    if (this.reportInFlight) return;
    this.sequence++;
    const out = this.reportBuffer;
    this.counters.report(out, this.instanceIdBytes, this.nodeIdBytes, this.sequence);
    if (host.grpcCall(this.grpcService, TRAFFIC_SERVICE, TRAFFIC_REPORT, out.ptr, out.len, 5000) == WasmResult.Ok) {
      this.reportInFlight = true;
      this.reportToken = host.grpcToken;
    }
  }

  private openStream(now: u64): void {
    if (host.grpcStream(this.grpcService, RULES_SERVICE, STREAM_RULES) != WasmResult.Ok) {
      // The cluster may not exist yet (Envoy adds clusters after listeners): retry on tick.
      this.scheduleReconnect(now);
      return;
    }
    this.streamToken = host.grpcToken;
    this.streamOpen = true;
    this.sendRuleRequest(true, EMPTY, EMPTY);
  }

  /** First request (with the node), ACK (empty error) or NACK. version_info is what we now run. */
  private sendRuleRequest(withNode: bool, nonce: Uint8Array, error: Uint8Array): void {
    const out = this.streamBuffer;
    encodeRuleRequest(out, withNode ? this.node : null, this.instanceIdBytes, this.versionBytes, nonce, error);
    const msg = new Uint8Array(<i32>out.len);
    memory.copy(msg.dataStart, out.ptr, out.len);
    host.grpcSend(this.streamToken, msg, false);
  }

  /** Jittered exponential backoff: 0.5 s doubling to 30 s, each wait drawn from [b/2, b]. */
  private scheduleReconnect(now: u64): void {
    this.backoffMs = this.backoffMs == 0 ? 500 : min(this.backoffMs * 2, 30000);
    const half = this.backoffMs / 2;
    this.nextConnectMs = now + <u64>half + (this.nextEntropy() % <u64>(half + 1));
  }

  // Envoy ends a successful unary call with on_grpc_receive alone; on_grpc_close means it failed.
  onGrpcReceive(token: u32, size: u32): void {
    if (token == this.reportToken) { this.reportInFlight = false; return; }
    if (token != this.streamToken || !this.streamOpen) return;
    if (host.getBufferBytes(BufferType.GrpcReceiveBuffer, 0, size) != WasmResult.Ok) return;
    const ptr = host.retPtr;
    const r = this.response;
    if (!r.read(ptr, host.retLen)) {
      host.logError("graylane: malformed RuleResponse from the control plane");
      heap.free(ptr);
      return;
    }
    // Signed-override keys come only this way, never in the plugin configuration.
    if (r.keyLen > 0 || r.prevKeyLen > 0) this.decider.signed.setKeys(r.keyPtr, r.keyLen, r.prevKeyPtr, r.prevKeyLen);
    if (r.reportNow) {
      this.lastReportMs = host.nowNanos() / 1000000;
      this.report();
    }
    if (!r.hasRuleSet) {
      heap.free(ptr);
      return;
    }
    const nonce = copyBytes(r.noncePtr, r.nonceLen);
    const version = copyBytes(r.versionPtr, r.versionLen);
    const ruleSet = copyBytes(r.ruleSetPtr, r.ruleSetLen);
    heap.free(ptr);
    this.backoffMs = 0; // the control plane answers: a later disconnect starts the backoff afresh
    if (this.apply(ruleSet, "control plane")) {
      this.versionBytes = version;
      this.sendRuleRequest(false, nonce, EMPTY);
    } else {
      this.sendRuleRequest(false, nonce, utf8(ruleError.length > 0 ? ruleError : "refused"));
    }
  }

  onGrpcClose(token: u32, status: u32): void {
    if (token == this.reportToken) {
      this.reportInFlight = false;
      if (status != 0) host.log(LogLevel.Debug, "graylane: traffic report failed with gRPC status " + status.toString());
    } else if (token == this.streamToken && this.streamOpen) {
      this.streamOpen = false;
      this.streamToken = 0;
      const now = host.nowNanos() / 1000000;
      this.scheduleReconnect(now);
      host.logWarn("graylane: rule stream closed (gRPC status " + status.toString() + "), keeping " + this.version() + ", reconnecting");
    }
  }

  newHttpContext(id: u32): HttpContext {
    const s = this.pool.length > 0 ? this.pool.pop() : new LaneStream(this);
    s.id = id;
    return s;
  }

  nextEntropy(): u64 {
    return this.mixEntropy(host.nowNanos());
  }

  /** Advances the entropy state with a time the caller already read. */
  mixEntropy(nanos: u64): u64 {
    this.entropy = splitmix64(this.entropy ^ nanos);
    return this.entropy;
  }
}

class LaneStream extends HttpContext {
  group: CGroup | null = null;
  groupIndex: i32 = -1;
  lane: i32 = 0;
  route: i32 = 0;
  service: i32 = 0;
  source: u32 = SRC_BASE;
  direction: u32 = 0;
  startNanos: u64 = 0;
  statusClass: u32 = 0;
  latencyMicros: u64 = 0;
  hasLatency: bool = false;
  setCookie: bool = false;
  readonly cookieId: usize = heap.alloc(16);
  gm: GroupMetrics | null = null;

  constructor(public root: LaneRoot) { super(0); }

  private reset(): void {
    this.group = null;
    this.gm = null;
    this.groupIndex = -1;
    this.statusClass = 0;
    this.hasLatency = false;
    this.setCookie = false;
  }

  onRequestHeaders(headers: u32, endOfStream: bool): u32 {
    this.reset();
    const root = this.root;
    const rules = root.rules;
    if (rules == null) {
      // No RuleSet yet: nothing to decide, but an edge still must not let outsiders pick a lane.
      if (root.config.edge) this.stripDefaults();
      return Action.Continue;
    }
    this.startNanos = host.nowNanos();
    if (host.getHeaderMapPairs(MapType.RequestHeaders) != WasmResult.Ok) return Action.Continue;
    // Keep our own hold of the header block: handle() makes other host calls that reuse retPtr.
    const headersPtr = host.retPtr;
    const view = root.view;
    view.load(headersPtr, host.retLen);
    this.handle(rules, view);
    root.routeMeta.release();
    heap.free(headersPtr);
    return Action.Continue;
  }

  /** The DESIGN.md default lane and route headers and the baggage lane member, removed at the edge. */
  private stripDefaults(): void {
    if (host.getHeaderMapPairs(MapType.RequestHeaders) != WasmResult.Ok) return;
    const headersPtr = host.retPtr;
    const view = this.root.view;
    view.load(headersPtr, host.retLen);
    if (view.find(H_DEFAULT_LANE)) host.removeHeader(MapType.RequestHeaders, H_DEFAULT_LANE.dataStart, <usize>H_DEFAULT_LANE.byteLength);
    if (view.find(H_DEFAULT_ROUTE)) host.removeHeader(MapType.RequestHeaders, H_DEFAULT_ROUTE.dataStart, <usize>H_DEFAULT_ROUTE.byteLength);
    stripBaggageLane(view, this.root.scratch);
    heap.free(headersPtr);
    host.retPtr = 0;
  }

  private handle(rules: CRuleSet, view: RequestView): void {
    const root = this.root;
    const cfg = root.config;
    let dir = DIR_EDGE;
    if (!cfg.edge) dir = cfg.direction != DIRECTION_AUTO ? cfg.direction : listenerDirection();
    this.direction = dir;

    if (cfg.edge) stripUntrusted(rules, view, root.scratch);

    // Destination service.
    let found = false;
    if (dir == DIR_INBOUND) {
      found = root.localGroup >= 0;
      root.foundGroup = root.localGroup;
      root.foundService = root.localService;
    } else {
      const meta = root.routeMeta;
      meta.read();
      if (meta.serviceLen > 0) found = root.findService(meta.servicePtr, meta.serviceLen);
      if (!found && view.hostLen > 0) found = root.findHost(view.hostPtr, view.hostLen);
      if (!found && dir == DIR_EDGE && view.pathPtr != 0) found = root.findPath(view.pathPtr, view.pathLen);
    }
    if (!found) {
      host.incrementMetric(root.mNoDestination, 1);
      // A route header nobody decided must not steer routing, on any side (DESIGN.md).
      for (let i = 0; i < rules.groups.length; i++) {
        const rh = rules.groups[i].routeHeader;
        if (view.find(rh)) host.removeHeader(MapType.RequestHeaders, rh.dataStart, <usize>rh.byteLength);
      }
      return;
    }

    const gi = root.foundGroup;
    const si = root.foundService;
    const g = unchecked(rules.groups[gi]);
    const d = root.decider;
    const now = this.startNanos / 1000000;
    d.decide(g, view, cfg.edge, now, root.mixEntropy(this.startNanos)); // no second clock read
    if (d.overrideIgnored) host.incrementMetric(root.mOverrideIgnored, 1);
    if (d.unknownLane) host.incrementMetric(root.mUnknownLane, 1);
    const lane = d.lane;
    const route = g.route(lane, si);
    this.group = g;
    this.groupIndex = gi;
    this.gm = unchecked(root.metrics[gi]);
    this.lane = lane;
    this.route = route;
    this.service = si;
    this.source = d.source;
    if (d.generated) {
      this.setCookie = true;
      memory.copy(this.cookieId, d.generatedId, 16);
    }

    if (dir == DIR_INBOUND && d.hasTrace) root.traces.remember(g, d.tracePtr, d.traceLen, lane, now);

    // Headers out: lane, route (outbound/edge), baggage member.
    const laneName = unchecked(g.lanes[lane]).name;
    host.replaceHeader(MapType.RequestHeaders, g.laneHeader.dataStart, <usize>g.laneHeader.byteLength, laneName.dataStart, <usize>laneName.byteLength);
    if (dir != DIR_INBOUND) {
      const routeName = unchecked(g.lanes[route]).name;
      host.replaceHeader(MapType.RequestHeaders, g.routeHeader.dataStart, <usize>g.routeHeader.byteLength, routeName.dataStart, <usize>routeName.byteLength);
    }
    const out = root.scratch;
    out.reset();
    collectBaggage(view, out);
    appendLaneMember(out, laneName);
    host.replaceHeader(MapType.RequestHeaders, H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, out.ptr, out.len);
    // Route again, unless the route Envoy already matched says (metadata `graylane.lane`, which
    // generated configs set) that it serves this very lane: re-matching would pick the same route.
    if (dir != DIR_INBOUND && !root.routeMeta.servesLane(unchecked(g.lanes[route]).name)) {
      host.callForeign(F_CLEAR_ROUTE_CACHE.dataStart, <usize>F_CLEAR_ROUTE_CACHE.byteLength);
    }
    host.incrementMetric(unchecked(this.gm!.ids[lane * 8 + <i32>d.source]), 1);
  }

  onResponseHeaders(headers: u32, endOfStream: bool): u32 {
    if (this.group == null) return Action.Continue;
    this.latencyMicros = (host.nowNanos() - this.startNanos) / 1000;
    this.hasLatency = true;
    if (host.getHeaderMapValue(MapType.ResponseHeaders, H_STATUS.dataStart, <usize>H_STATUS.byteLength) == WasmResult.Ok) {
      if (host.retLen == 3) {
        const c = <u32>load<u8>(host.retPtr) - 48;
        if (c >= 1 && c <= 5) this.statusClass = c;
      }
      host.freeRet();
    }
    if (this.setCookie) {
      const g = this.group!;
      const out = this.root.scratch;
      out.reset();
      out.pushBytes(g.stickyCookie);
      out.pushByte(61);
      out.push(this.cookieId, 16);
      out.pushBytes(COOKIE_PATH);
      if (g.cookieMaxAge > 0) {
        out.pushBytes(COOKIE_MAX_AGE);
        out.pushDecimal(g.cookieMaxAge);
      }
      out.pushBytes(COOKIE_FLAGS);
      host.addHeader(MapType.ResponseHeaders, H_SET_COOKIE.dataStart, <usize>H_SET_COOKIE.byteLength, out.ptr, out.len);
    }
    return Action.Continue;
  }

  onLog(): void {
    const gm = this.gm;
    if (gm == null) return;
    // Indices come from the same RuleSet as gm; checked anyway, because a bad key would break every report.
    if (<u32>this.lane >= <u32>gm.laneNames.length || <u32>this.route >= <u32>gm.laneNames.length || <u32>this.service >= <u32>gm.serviceNames.length) {
      this.gm = null;
      return;
    }
    const key = counterKey(gm.groupName, unchecked(gm.laneNames[this.lane]), unchecked(gm.laneNames[this.route]),
      unchecked(gm.serviceNames[this.service]), this.direction, this.source, this.statusClass);
    this.root.counters.count(key, this.latencyMicros, this.hasLatency);
    this.gm = null; // count once
  }

  onDelete(): void {
    this.reset();
    if (this.root.pool.length < 1024) this.root.pool.push(this);
  }
}

const COOKIE_PATH = utf8("; Path=/");
const COOKIE_MAX_AGE = utf8("; Max-Age=");
const COOKIE_FLAGS = utf8("; HttpOnly; SameSite=Lax");

/**
 * The matched route's `graylane` metadata for one request: read once, freed after the decision.
 * Pairs format: u32 count, count × (u32 key size, u32 value size), then each key and value NUL-ended.
 */
class RouteMetadata {
  buf: usize = 0;
  servicePtr: usize = 0;
  serviceLen: usize = 0;
  lanePtr: usize = 0;
  laneLen: usize = 0;

  read(): void {
    this.release();
    if (host.getProperty(P_ROUTE_GRAYLANE.dataStart, <usize>P_ROUTE_GRAYLANE.byteLength) != WasmResult.Ok) return;
    const p = host.retPtr;
    const l = host.retLen;
    host.retPtr = 0; // ours now: released after the decision
    this.buf = p;
    if (l < 4) return;
    const n = <usize>load<u32>(p);
    if (n > (l - 4) / 8) return; // malformed: no metadata
    let d = p + 4 + n * 8;
    const end = p + l;
    for (let i: usize = 0; i < n; i++) {
      const ks = <usize>load<u32>(p + 4 + i * 8);
      const vs = <usize>load<u32>(p + 8 + i * 8);
      if (ks + vs + 2 > end - d) return;
      const v = d + ks + 1;
      if (equalBytes(d, ks, K_SERVICE.dataStart, <usize>K_SERVICE.byteLength)) { this.servicePtr = v; this.serviceLen = vs; }
      else if (equalBytes(d, ks, K_LANE.dataStart, <usize>K_LANE.byteLength)) { this.lanePtr = v; this.laneLen = vs; }
      d = v + vs + 1;
    }
  }

  /** Whether the route Envoy matched before the filter ran says it sends to `lane`. */
  servesLane(lane: Uint8Array): bool {
    return this.laneLen > 0 && equalBytes(this.lanePtr, this.laneLen, lane.dataStart, <usize>lane.byteLength);
  }

  release(): void {
    if (this.buf != 0) heap.free(this.buf);
    this.buf = 0;
    this.serviceLen = 0;
    this.laneLen = 0;
  }
}

function listenerDirection(): u32 {
  let dir = DIR_OUTBOUND;
  if (host.getProperty(P_DIRECTION.dataStart, <usize>P_DIRECTION.byteLength) == WasmResult.Ok) {
    if (host.retLen >= 1 && load<u8>(host.retPtr) == <u8>DIRECTION_INBOUND) dir = DIR_INBOUND;
    host.freeRet();
  }
  return dir;
}

/** Every baggage member except graylane, from every baggage header. */
function collectBaggage(view: RequestView, out: Scratch): void {
  let i = view.findFrom(H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, 0);
  while (i >= 0) {
    appendOtherMembers(out, view.valPtr, view.valLen);
    i = view.findFrom(H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, i + 1);
  }
}

/**
 * At the edge, outsiders must not pick a lane: remove every untrusting group's lane header (unless it
 * is also its override header), route header and the baggage lane member, whatever the destination.
 */
function stripUntrusted(rules: CRuleSet, view: RequestView, out: Scratch): void {
  let anyUntrusted = false;
  for (let i = 0; i < rules.groups.length; i++) {
    const g = unchecked(rules.groups[i]);
    if (g.trustIncoming) continue;
    anyUntrusted = true;
    const lh = g.laneHeader;
    if (!equalBytes(lh.dataStart, <usize>lh.byteLength, g.overrideHeader.dataStart, <usize>g.overrideHeader.byteLength) && view.find(lh)) {
      host.removeHeader(MapType.RequestHeaders, lh.dataStart, <usize>lh.byteLength);
    }
    const rh = g.routeHeader;
    if (view.find(rh)) host.removeHeader(MapType.RequestHeaders, rh.dataStart, <usize>rh.byteLength);
  }
  if (anyUntrusted) stripBaggageLane(view, out);
}

/** Removes the graylane member from `baggage`, keeping the others. */
function stripBaggageLane(view: RequestView, out: Scratch): void {
  if (!view.baggageLane()) return;
  out.reset();
  collectBaggage(view, out);
  if (out.len > 0) host.replaceHeader(MapType.RequestHeaders, H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, out.ptr, out.len);
  else host.removeHeader(MapType.RequestHeaders, H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength);
}

setRootContextFactory((id: u32): RootContext => new LaneRoot(id));
