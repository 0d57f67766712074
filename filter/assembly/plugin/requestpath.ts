// What every request of one root context reads: the applied RuleSet and the tables built from it
// (metrics, the local destination, strip plans), the settings from the plugin configuration, and
// buffers reused from request to request. The stream contexts hold one reference to it.
import * as host from "../abi/host";
import { Scratch, utf8 } from "../lane/bytes";
import { Counters } from "../lane/counters";
import { Decider } from "../lane/decision";
import { findService, NO_DESTINATION, RouteMetadata } from "../lane/destination";
import { edgeStripPlan, StripPlan, unroutedStripPlan } from "../lane/edge";
import { Entropy } from "../lane/entropy";
import { RequestView } from "../lane/request";
import { buildRuleSet, CRuleSet, ruleError } from "../lane/rules";
import { TraceMemory } from "../lane/tracememory";
import { TraceIdMaker } from "../lane/tracegen";
import { FilterMetrics, GroupMetrics } from "./metrics";
import { HostSharedStore } from "./shareddata";

export class RequestPath {
  edge: bool = false;
  /** Plugin config direction (DIRECTION_AUTO: read xds.listener_direction per request). */
  direction: u32 = 0;
  /** The local service's name (inbound destination). */
  localService: Uint8Array = new Uint8Array(0);
  /**
   * The lane of this proxy's instance (plugin config node.lane, else the node metadata's lane
   * label), read once per root context; each group's index of it is resolved when rules or
   * configuration change (CGroup.instanceLane), never per request.
   */
  instanceLane: Uint8Array = new Uint8Array(0);

  rules: CRuleSet | null = null;
  groupMetrics: Array<GroupMetrics> = [];
  /** The local service's destination in `rules`, or NO_DESTINATION. */
  local: i32 = NO_DESTINATION;
  edgeStrip: StripPlan = edgeStripPlan(null);
  unroutedStrip: StripPlan = new StripPlan();

  readonly view: RequestView = new RequestView();
  readonly routeMeta: RouteMetadata = new RouteMetadata();
  /** The host block routeMeta reads, held until the decision is done (0: none). */
  routeMetaBuf: usize = 0;
  readonly traces: TraceMemory = new TraceMemory(new HostSharedStore());
  readonly decider: Decider = new Decider(this.traces);
  readonly scratch: Scratch = new Scratch();
  readonly counters: Counters = new Counters();
  readonly entropy: Entropy = new Entropy();
  /** The trace header value made at the edge for a request without one (edge filters only). */
  readonly traceIds: TraceIdMaker = new TraceIdMaker();
  readonly metrics: FilterMetrics = new FilterMetrics();

  version(): string {
    const r = this.rules;
    return r == null ? "none" : r.version;
  }

  /** Applies RuleSet bytes, or refuses them (logged, counted) and keeps the current rules. */
  apply(bytes: Uint8Array, from: string): bool {
    const next = buildRuleSet(bytes);
    if (next == null) {
      host.incrementMetric(this.metrics.rejected, 1);
      host.logError("graylane: RuleSet from " + from + " refused, keeping " + this.version() + ": " + ruleError);
      return false;
    }
    const metrics = new Array<GroupMetrics>();
    for (let i = 0; i < next.groups.length; i++) metrics.push(new GroupMetrics(next.groups[i], this.counters));
    this.rules = next;
    this.view.use(next.headers);
    this.groupMetrics = metrics;
    const edge = edgeStripPlan(next);
    this.edgeStrip = edge;
    this.unroutedStrip = unroutedStripPlan(next, this.edge ? edge : null);
    this.resolveLocal();
    host.incrementMetric(this.metrics.applied, 1);
    host.logInfo("graylane: RuleSet " + next.version + " applied from " + from + " (" + next.groups.length.toString() + " groups)");
    return true;
  }

  /** Takes the request settings of a (new) plugin configuration. */
  configure(edge: bool, direction: u32, localService: string, instanceLane: Uint8Array): void {
    this.edge = edge;
    this.direction = direction;
    this.localService = utf8(localService);
    this.instanceLane = instanceLane;
    const r = this.rules;
    if (r != null) this.unroutedStrip = unroutedStripPlan(r, edge ? this.edgeStrip : null);
    this.resolveLocal();
  }

  private resolveLocal(): void {
    // Not found (the service left every group): none, never a previous RuleSet's indices.
    const r = this.rules;
    const name = this.localService;
    this.local = r == null || name.byteLength == 0 ? NO_DESTINATION : findService(r, name.dataStart, <usize>name.byteLength);
    if (r == null) return;
    // A lane name that is no lane of a group (or is its base) gives that group no instance lane.
    const il = this.instanceLane;
    for (let i = 0; i < r.groups.length; i++) {
      const g = unchecked(r.groups[i]);
      g.instanceLane = il.byteLength == 0 ? -1 : g.laneByName(il.dataStart, <usize>il.byteLength);
      if (g.instanceLane == 0) g.instanceLane = -1;
    }
  }
}
