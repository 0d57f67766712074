// Graylane lane filter: wiring between the proxy-wasm ABI (abi/) and the pure lane logic (lane/).
// Root context: configuration, the rule stream, the traffic reports (plugin/).
// Stream context: request headers in -> destination -> decision -> headers out; count at the end.
// Only the hooks the lane filter uses are exported: the host skips a hook the module does not
// export, so leaving out the body, request trailer, metadata and L4 hooks saves Envoy a call into V8
// per body chunk of every request and response, and leaving out on_done (always "done") one more per
// request. Response trailers are exported for gRPC's grpc-status: Envoy calls the hook only for a
// response that has trailers, which HTTP/1 responses practically never have. The ABI layer keeps
// every hook for other plugins.
export {
  proxy_abi_version_0_2_1, proxy_on_memory_allocate, proxy_on_context_create, proxy_on_vm_start, proxy_on_configure,
  proxy_on_tick, proxy_on_request_headers, proxy_on_response_headers, proxy_on_response_trailers, proxy_on_grpc_receive,
  proxy_on_grpc_close, proxy_on_log, proxy_on_delete,
} from "./abi/exports";
// Routed to by asconfig `use abort=... trace=...`; importing it makes the functions resolvable.
import "./abi/abort";

import { HttpContext, RootContext, setRootContextFactory } from "./abi/context";
import { Action, BufferType, MapType, WasmResult } from "./abi/types";
import * as host from "./abi/host";
import { utf8 } from "./lane/bytes";
import { PairsIndex } from "./abi/pairs";
import { DIRECTION_AUTO, DIRECTION_INBOUND, configError, parsePluginConfig, PluginConfig } from "./lane/config";
import { CGroup, FEATURES, ruleError } from "./lane/rules";
import { authorityFor, grpcServiceFor } from "./lane/discovery";
import { SOURCES, SRC_BASE } from "./lane/decision";
import { baggageWithoutLane, outgoingBaggage } from "./lane/propagation";
import { formatStickyCookie } from "./lane/cookie";
import { StripPlan } from "./lane/edge";
import { ID_BAGGAGE, ID_CONTENT_TYPE } from "./lane/headerset";
import { counterKey } from "./lane/counters";
import {
  DIR_EDGE, DIR_INBOUND, DIR_OUTBOUND, destinationGroup, destinationService, findDestination, NO_DESTINATION,
} from "./lane/destination";
import { GroupMetrics } from "./plugin/metrics";
import { RequestPath } from "./plugin/requestpath";
import { RuleStreamClient } from "./plugin/rulestream";
import { TrafficReporter } from "./plugin/reporter";
import { claimInstanceNumber, newInstanceId } from "./plugin/shareddata";
import { splitmix64 } from "./lane/entropy";
import { GRPC_UNKNOWN, grpcFromHttp, grpcStatusClass, isGrpcContentType, parseGrpcStatus } from "./lane/grpcstatus";

const FILTER_VERSION = "0.1.0";

const P_DIRECTION = utf8("xds\0listener_direction");
// The node metadata's LABELS (Istio puts the pod's labels there): a string map, read as pairs.
const P_NODE_LABELS = utf8("node\0metadata\0LABELS");
// The matched route's `graylane` metadata, whole: Envoy serialises a string map as proxy-wasm pairs,
// so one property read (the costliest host call the filter makes) gives `service` and `lane`.
const P_ROUTE_GRAYLANE = utf8("xds\0route_metadata\0filter_metadata\0graylane");
const F_CLEAR_ROUTE_CACHE = utf8("clear_route_cache");
const H_BAGGAGE = utf8("baggage");
const H_STATUS = utf8(":status");
const H_SET_COOKIE = utf8("set-cookie");
const H_B3_SPAN = utf8("x-b3-spanid");
const H_GRPC_STATUS = utf8("grpc-status");

class LaneRoot extends RootContext {
  config: PluginConfig = new PluginConfig();
  readonly path: RequestPath = new RequestPath();
  readonly stream: RuleStreamClient = new RuleStreamClient(this.path.entropy);
  readonly reporter: TrafficReporter = new TrafficReporter(this.path.counters);
  instanceAssigned: bool = false;
  /** This VM's number in the proxy-wide sequence (0: not claimed yet). */
  vmNumber: u32 = 0;
  readonly pool: Array<LaneStream> = [];

  onConfigure(size: u32): bool {
    const path = this.path;
    path.metrics.define();
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
    path.traces.slots = c.traceSlots;
    path.traces.ttlMillis = c.traceTtlMillis;
    // The worker VMs of one Envoy are configured within the same clock reading: at the edge the
    // number is claimed now, so their streams differ (trace ids made there must not repeat across
    // workers); elsewhere at the first tick, as the instance id needs it.
    if (c.edge && this.vmNumber == 0) this.vmNumber = claimInstanceNumber();
    path.entropy.seed(host.nowNanos() ^ (<u64>this.id << 40) ^ splitmix64(<u64>this.vmNumber));
    // The instance's lane: node.lane, else (Istio: one WasmPlugin for every lane's pods) the pod's
    // lane label in the node metadata. Read here, once per configuration, never per request.
    path.configure(c.edge, c.direction, c.service, c.lane.length > 0 ? utf8(c.lane) : laneFromNodeLabels(c.laneLabelKey));

    const cluster = utf8(c.cluster);
    const service = grpcServiceFor(cluster, utf8(authorityFor(c.cluster, c.authority)), c.token.length > 0 ? utf8("Bearer " + c.token) : new Uint8Array(0));
    const n = this.stream.node;
    n.id = utf8(c.nodeId);
    n.workload = utf8(c.workload);
    n.namespace = utf8(c.namespace);
    n.service = utf8(c.service);
    n.lane = path.instanceLane;
    n.filterVersion = utf8(FILTER_VERSION);
    if (n.features.length == 0) for (let i = 0; i < FEATURES.length; i++) n.features.push(utf8(FEATURES[i]));
    this.stream.service = service;
    const r = this.reporter;
    r.service = service;
    r.nodeId = utf8(c.nodeId);
    r.everyMs = <u64>c.reportIntervalMs;
    if (c.cluster.length > 0) host.setTickPeriodMillis(c.reportIntervalMs > 0 ? min(c.reportIntervalMs, 1000) : 1000);
    host.logInfo("graylane " + FILTER_VERSION + ": configured" + (c.edge ? " (edge)" : "") +
      (c.service.length > 0 ? ", local service " + c.service : "") + ", rules " + path.version());
    return true;
  }

  /** Applies RuleSet bytes to the request path; the rule stream then runs (reports) its version. */
  apply(bytes: Uint8Array, from: string): bool {
    if (!this.path.apply(bytes, from)) return false;
    this.stream.version = utf8(this.path.version());
    return true;
  }

  onTick(): void {
    if (this.config.cluster.length == 0) return;
    if (!this.instanceAssigned) {
      // Before the first report or stream.
      if (this.vmNumber == 0) this.vmNumber = claimInstanceNumber();
      const id = utf8(newInstanceId(this.config.nodeId, this.vmNumber, this.path.entropy));
      this.stream.instanceId = id;
      this.reporter.instanceId = id;
      this.instanceAssigned = true;
    }
    const now = host.nowNanos() / 1000000;
    this.stream.tick(now);
    this.reporter.tick(now);
  }

  onGrpcReceive(token: u32, size: u32): void {
    if (this.reporter.owns(token)) { this.reporter.received(host.nowNanos() / 1000000); return; }
    const s = this.stream;
    if (!s.owns(token) || !s.receive(size)) return;
    const r = s.response;
    // Signed-override keys come only this way, never in the plugin configuration.
    if (r.keyLen > 0 || r.prevKeyLen > 0) this.path.decider.signed.setKeys(r.keyPtr, r.keyLen, r.prevKeyPtr, r.prevKeyLen);
    if (r.reportNow) this.reporter.reportNow(host.nowNanos() / 1000000);
    if (!r.hasRuleSet) {
      s.release();
      return;
    }
    const applied = this.apply(s.takeRuleSet(), "control plane");
    s.answer(applied, ruleError);
  }

  onGrpcClose(token: u32, status: u32): void {
    if (this.reporter.owns(token)) this.reporter.closed(status);
    else if (this.stream.closed(token)) {
      host.logWarn("graylane: rule stream closed (gRPC status " + status.toString() + "), keeping " + this.path.version() + ", reconnecting");
    }
  }

  newHttpContext(id: u32): HttpContext {
    const s = this.pool.length > 0 ? this.pool.pop() : new LaneStream(this);
    s.id = id;
    return s;
  }
}

class LaneStream extends HttpContext {
  readonly path: RequestPath;
  group: CGroup | null = null; // the decided group (of the RuleSet the decision used)
  lane: i32 = 0;
  route: i32 = 0;
  service: i32 = 0;
  source: u32 = SRC_BASE;
  direction: u32 = 0;
  startNanos: u64 = 0;
  statusClass: u32 = 0;
  /** The request is gRPC (its content-type): the response's class comes from grpc-status. */
  grpc: bool = false;
  /** gRPC status + 1 of the response (0: none yet, or not gRPC), as the counter key holds it. */
  grpcKey: u32 = 0;
  /** A gRPC response whose status comes in the trailers. */
  grpcPending: bool = false;
  latencyMicros: u64 = 0;
  hasLatency: bool = false;
  setCookie: bool = false;
  readonly cookieId: usize = heap.alloc(16);
  gm: GroupMetrics | null = null;

  constructor(public root: LaneRoot) {
    super(0);
    this.path = root.path;
  }

  private reset(): void {
    this.group = null;
    this.gm = null;
    this.statusClass = 0;
    this.grpc = false;
    this.grpcKey = 0;
    this.grpcPending = false;
    this.hasLatency = false;
    this.setCookie = false;
  }

  onRequestHeaders(headers: u32, endOfStream: bool): u32 {
    this.reset();
    const path = this.path;
    if (path.rules == null) {
      // No RuleSet yet: nothing to decide, but an edge still must not let outsiders pick a lane.
      if (path.edge && host.getHeaderMapPairs(MapType.RequestHeaders) == WasmResult.Ok) {
        const headersPtr = host.retPtr;
        path.view.load(headersPtr, host.retLen);
        strip(path.edgeStrip, path);
        host.release(headersPtr);
        host.retPtr = 0;
      }
      return Action.Continue;
    }
    if (host.getHeaderMapPairs(MapType.RequestHeaders) != WasmResult.Ok) return Action.Continue;
    // Keep our own hold of the header block: handle() makes other host calls that reuse retPtr.
    const headersPtr = host.retPtr;
    path.view.load(headersPtr, host.retLen);
    this.handle(path);
    releaseRouteMetadata(path);
    host.release(headersPtr);
    return Action.Continue;
  }

  private handle(path: RequestPath): void {
    const rules = path.rules!;
    const view = path.view;
    const edge = path.edge;
    let dir = DIR_EDGE;
    if (!edge) dir = path.direction != DIRECTION_AUTO ? path.direction : listenerDirection();
    this.direction = dir;

    if (edge) strip(path.edgeStrip, path);

    let dest = path.local;
    if (dir != DIR_INBOUND) {
      readRouteMetadata(path);
      dest = findDestination(rules, path.routeMeta, view, edge);
    }
    if (dest == NO_DESTINATION) {
      host.incrementMetric(path.metrics.noDestination, 1);
      strip(path.unroutedStrip, path);
      return;
    }

    // The clock only once there is something to decide: a request of no group does not read it.
    this.startNanos = host.nowNanos();
    const gi = destinationGroup(dest);
    const si = destinationService(dest);
    const g = unchecked(rules.groups[gi]);
    // At the edge, before anything reads the trace header: a request without one gets a new id.
    // The decision below reads the request as it came (path.view), so the new id is no sticky key
    // and no trace-memory lookup: the lane is the one a request without a trace header gets.
    if (edge && g.generateTrace && !view.header(g.traceHeaderId)) addTraceId(path, g, this.startNanos);
    const d = path.decider;
    const now = this.startNanos / 1000000;
    // Step 3b counts the instance the request leaves: the outbound side only.
    d.decide(g, view, edge, now, path.entropy.mix(this.startNanos), dir == DIR_OUTBOUND ? g.instanceLane : -1); // no second clock read
    if (d.overrideIgnored) host.incrementMetric(path.metrics.overrideIgnored, 1);
    if (d.unknownLane) host.incrementMetric(path.metrics.unknownLane, 1);
    const lane = d.lane;
    const route = g.route(lane, si);
    const gm = unchecked(path.groupMetrics[gi]);
    this.group = g;
    this.gm = gm;
    this.lane = lane;
    this.route = route;
    this.service = si;
    this.source = d.source;
    // A guest-side look at the request the filter holds anyway: only gRPC streams read more later.
    this.grpc = view.has(ID_CONTENT_TYPE) && isGrpcContentType(view.valPtr, view.valLen);
    if (d.generated) {
      this.setCookie = true;
      memory.copy(this.cookieId, d.generatedId, 16);
    }

    if (dir == DIR_INBOUND && d.hasTrace) path.traces.remember(g, d.tracePtr, d.traceLen, lane, now);

    // Headers out: lane, route (outbound/edge), baggage member; on a sidecar each only where the
    // request does not already carry exactly that value (a hop whose app propagated them), as a
    // write is a host call. Not at the edge: there the view still shows headers strip() removed.
    const laneName = unchecked(g.lanes[lane]).name;
    if (edge || !view.carries(g.laneHeaderId, laneName.dataStart, <usize>laneName.byteLength)) {
      host.replaceHeader(MapType.RequestHeaders, g.laneHeader.dataStart, <usize>g.laneHeader.byteLength, laneName.dataStart, <usize>laneName.byteLength);
    }
    const routeName = unchecked(g.lanes[route]).name;
    if (dir != DIR_INBOUND && (edge || !view.carries(g.routeHeaderId, routeName.dataStart, <usize>routeName.byteLength))) {
      host.replaceHeader(MapType.RequestHeaders, g.routeHeader.dataStart, <usize>g.routeHeader.byteLength, routeName.dataStart, <usize>routeName.byteLength);
    }
    const out = path.scratch;
    outgoingBaggage(out, view, laneName);
    if (edge || !view.carries(ID_BAGGAGE, out.ptr, out.len)) {
      host.replaceHeader(MapType.RequestHeaders, H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, out.ptr, out.len);
    }
    // Route again, unless the route Envoy already matched says (metadata `graylane.lane`, which
    // generated configs set) that it serves this very lane: re-matching would pick the same route.
    if (dir != DIR_INBOUND && !path.routeMeta.servesLane(routeName)) {
      host.callForeign(F_CLEAR_ROUTE_CACHE.dataStart, <usize>F_CLEAR_ROUTE_CACHE.byteLength);
    }
    host.incrementMetric(unchecked(gm.ids[lane * SOURCES + <i32>d.source]), 1);
  }

  onResponseHeaders(headers: u32, endOfStream: bool): u32 {
    if (this.group == null) return Action.Continue;
    this.latencyMicros = (host.nowNanos() - this.startNanos) / 1000;
    this.hasLatency = true;
    let status: u32 = 0;
    if (host.getHeaderMapValue(MapType.ResponseHeaders, H_STATUS.dataStart, <usize>H_STATUS.byteLength) == WasmResult.Ok) {
      status = httpStatus(host.retPtr, host.retLen);
      host.freeRet();
      const c = status / 100;
      if (c >= 1 && c <= 5) this.statusClass = c;
    }
    if (this.grpc) this.grpcResponse(status, endOfStream);
    if (this.setCookie) {
      const out = this.path.scratch;
      formatStickyCookie(out, this.group!, this.cookieId);
      host.addHeader(MapType.ResponseHeaders, H_SET_COOKIE.dataStart, <usize>H_SET_COOKIE.byteLength, out.ptr, out.len);
    }
    return Action.Continue;
  }

  /**
   * A gRPC response's status: grpc-status in the headers (trailers-only), else an HTTP error's
   * mapping (the class stays the HTTP one), else it comes in the trailers.
   */
  private grpcResponse(status: u32, endOfStream: bool): void {
    if (host.getHeaderMapValue(MapType.ResponseHeaders, H_GRPC_STATUS.dataStart, <usize>H_GRPC_STATUS.byteLength) == WasmResult.Ok) {
      this.setGrpcStatus(parseGrpcStatus(host.retPtr, host.retLen));
      host.freeRet();
    } else if (status != 200) {
      if (status != 0) this.grpcKey = grpcFromHttp(status) + 1;
    } else if (endOfStream) {
      this.setGrpcStatus(GRPC_UNKNOWN); // 200, ended, and no status anywhere
    } else {
      this.grpcPending = true;
    }
  }

  private setGrpcStatus(code: u32): void {
    this.grpcKey = code + 1;
    this.statusClass = grpcStatusClass(code);
    this.grpcPending = false;
  }

  onResponseTrailers(trailers: u32): u32 {
    if (!this.grpcPending) return Action.Continue;
    if (host.getHeaderMapValue(MapType.ResponseTrailers, H_GRPC_STATUS.dataStart, <usize>H_GRPC_STATUS.byteLength) == WasmResult.Ok) {
      this.setGrpcStatus(parseGrpcStatus(host.retPtr, host.retLen));
      host.freeRet();
    } else {
      this.setGrpcStatus(GRPC_UNKNOWN);
    }
    return Action.Continue;
  }

  onLog(): void {
    const gm = this.gm;
    if (gm == null) return;
    // A gRPC response that ended without trailers (a reset, a broken upstream) has no status: a
    // client sees an error, counted as UNKNOWN.
    if (this.grpcPending) this.setGrpcStatus(GRPC_UNKNOWN);
    // Indices come from the same RuleSet as gm; checked anyway, because a bad key would break every report.
    if (<u32>this.lane >= <u32>gm.laneNames.length || <u32>this.route >= <u32>gm.laneNames.length || <u32>this.service >= <u32>gm.serviceNames.length) {
      this.gm = null;
      return;
    }
    const key = counterKey(gm.groupName, unchecked(gm.laneNames[this.lane]), unchecked(gm.laneNames[this.route]),
      unchecked(gm.serviceNames[this.service]), this.direction, this.source, this.statusClass, this.grpcKey);
    this.path.counters.count(key, this.latencyMicros, this.hasLatency);
    this.gm = null; // count once
  }

  onDelete(): void {
    this.reset();
    if (this.root.pool.length < 1024) this.root.pool.push(this);
  }
}

/** Writes a new trace header of group `g` (and for B3 its span id) on the request, counted. */
function addTraceId(path: RequestPath, g: CGroup, nanos: u64): void {
  const t = path.traceIds;
  t.make(g, path.entropy, nanos);
  const h = g.traceHeader;
  host.replaceHeader(MapType.RequestHeaders, h.dataStart, <usize>h.byteLength, t.ptr, t.len);
  if (t.hasSpan) host.replaceHeader(MapType.RequestHeaders, H_B3_SPAN.dataStart, <usize>H_B3_SPAN.byteLength, t.span, 16);
  host.incrementMetric(path.metrics.traceGenerated, 1);
}

/** Removes the plan's headers the request carries (path.view), and its baggage lane member. */
function strip(plan: StripPlan, path: RequestPath): void {
  const view = path.view;
  const names = plan.headers;
  for (let i = 0; i < names.length; i++) {
    const h = unchecked(names[i]);
    if (view.has(unchecked(plan.ids[i]))) host.removeHeader(MapType.RequestHeaders, h.dataStart, <usize>h.byteLength);
  }
  const out = path.scratch;
  if (plan.baggage && baggageWithoutLane(out, view)) {
    if (out.len > 0) host.replaceHeader(MapType.RequestHeaders, H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength, out.ptr, out.len);
    else host.removeHeader(MapType.RequestHeaders, H_BAGGAGE.dataStart, <usize>H_BAGGAGE.byteLength);
  }
}

/** The matched route's `graylane` metadata, held (host block and all) until releaseRouteMetadata. */
function readRouteMetadata(path: RequestPath): void {
  const meta = path.routeMeta;
  if (host.getProperty(P_ROUTE_GRAYLANE.dataStart, <usize>P_ROUTE_GRAYLANE.byteLength) != WasmResult.Ok) {
    meta.clear();
    return;
  }
  path.routeMetaBuf = host.retPtr;
  host.retPtr = 0; // ours now: released after the decision
  meta.load(path.routeMetaBuf, host.retLen);
}

function releaseRouteMetadata(path: RequestPath): void {
  if (path.routeMetaBuf != 0) host.release(path.routeMetaBuf);
  path.routeMetaBuf = 0;
  path.routeMeta.clear();
}

/** The value of label `key` in the node metadata's LABELS, or empty (no labels, no such label). */
function laneFromNodeLabels(key: string): Uint8Array {
  if (host.getProperty(P_NODE_LABELS.dataStart, <usize>P_NODE_LABELS.byteLength) != WasmResult.Ok) return new Uint8Array(0);
  const k = utf8(key);
  const pairs = new PairsIndex();
  let out = new Uint8Array(0);
  if (pairs.load(host.retPtr, host.retLen)) {
    for (let i = 0; i < pairs.count; i++) {
      if (pairs.nameLenAt(i) != <usize>k.byteLength || memory.compare(pairs.nameAt(i), k.dataStart, <usize>k.byteLength) != 0) continue;
      const vl = pairs.valueLenAt(i);
      out = new Uint8Array(<i32>vl);
      memory.copy(out.dataStart, pairs.valueAt(i), vl);
      break;
    }
  }
  host.freeRet();
  return out;
}

/** A 3-digit :status value, or 0. */
function httpStatus(p: usize, l: usize): u32 {
  if (l != 3) return 0;
  let v: u32 = 0;
  for (let i: usize = 0; i < 3; i++) {
    const c = <u32>load<u8>(p + i) - 48;
    if (c > 9) return 0;
    v = v * 10 + c;
  }
  return v;
}

function listenerDirection(): u32 {
  let dir = DIR_OUTBOUND;
  if (host.getProperty(P_DIRECTION.dataStart, <usize>P_DIRECTION.byteLength) == WasmResult.Ok) {
    if (host.retLen >= 1 && load<u8>(host.retPtr) == <u8>DIRECTION_INBOUND) dir = DIR_INBOUND;
    host.freeRet();
  }
  return dir;
}

setRootContextFactory((id: u32): RootContext => new LaneRoot(id));
