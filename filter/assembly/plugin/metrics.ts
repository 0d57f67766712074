// Envoy stats the filter defines: filter-wide counters once per root context, and per applied
// RuleSet one counter per (group, lane, decision source), with the interned counter names of the
// traffic report alongside.
import * as host from "../abi/host";
import { MetricType } from "../abi/types";
import { Counters } from "../lane/counters";
import { SOURCE_NAMES, SOURCES, SRC_INSTANCE } from "../lane/decision";
import { CGroup } from "../lane/rules";

export class FilterMetrics {
  overrideIgnored: u32 = u32.MAX_VALUE;
  unknownLane: u32 = u32.MAX_VALUE;
  noDestination: u32 = u32.MAX_VALUE;
  applied: u32 = u32.MAX_VALUE;
  rejected: u32 = u32.MAX_VALUE;
  traceGenerated: u32 = u32.MAX_VALUE;

  /** Defines them the first time (on_configure may run again on the same root). */
  define(): void {
    if (this.applied != u32.MAX_VALUE) return;
    this.overrideIgnored = host.defineMetric(MetricType.Counter, "graylane.override_ignored");
    this.unknownLane = host.defineMetric(MetricType.Counter, "graylane.unknown_lane");
    this.noDestination = host.defineMetric(MetricType.Counter, "graylane.no_destination");
    this.applied = host.defineMetric(MetricType.Counter, "graylane.ruleset_applied");
    this.rejected = host.defineMetric(MetricType.Counter, "graylane.ruleset_rejected");
    this.traceGenerated = host.defineMetric(MetricType.Counter, "graylane.trace_generated");
  }
}

export class GroupMetrics {
  // [lane * SOURCES + source]; source "instance" defined only in strict groups (the only ones that count it)
  ids: StaticArray<u32>;
  // counter name ids: group, per lane, per service
  groupName: u32 = 0;
  laneNames: StaticArray<u32>;
  serviceNames: StaticArray<u32>;

  constructor(g: CGroup, counters: Counters) {
    const nl = g.lanes.length;
    this.ids = new StaticArray<u32>(nl * SOURCES);
    this.laneNames = new StaticArray<u32>(nl);
    this.serviceNames = new StaticArray<u32>(g.services.length);
    this.groupName = counters.names.id(g.nameString);
    for (let l = 0; l < nl; l++) {
      const lane = g.lanes[l];
      this.laneNames[l] = counters.names.id(lane.nameString);
      for (let s = 1; s < SOURCES; s++) {
        if (<u32>s == SRC_INSTANCE && !g.strict) continue;
        this.ids[l * SOURCES + s] = host.defineMetric(MetricType.Counter,
          "graylane.group." + g.nameString + ".lane." + lane.nameString + ".source." + SOURCE_NAMES[s] + ".requests");
      }
    }
    for (let s = 0; s < g.services.length; s++) this.serviceNames[s] = counters.names.id(g.services[s].nameString);
  }
}
