// The destination service of a request (DESIGN.md "The decision"): on the inbound side the local
// service; on the outbound side and at the edge, in order, the route's metadata `graylane.service`,
// the :authority host without port against the services' hosts, and at the edge only the longest
// `paths` prefix. Pure: the plugin reads the request and the route metadata from the host.
//
// A destination is a packed integer, (group << 16) | service, or NO_DESTINATION: the lookup allocates
// nothing and returns both indices at once. rules.ts refuses RuleSets whose indices would not fit
// (MAX_GROUPS, MAX_SERVICES).
import { PairsIndex } from "../abi/pairs";
import { equalBytes, startsWith, utf8 } from "./bytes";
import { CRuleSet } from "./rules";
import { RequestView } from "./request";

export const NO_DESTINATION: i32 = -1;

// traffic.proto Direction, which is also how the filter tells its sides apart.
export const DIR_INBOUND: u32 = 1;
export const DIR_OUTBOUND: u32 = 2;
export const DIR_EDGE: u32 = 3;

@inline export function destination(group: i32, service: i32): i32 { return (group << 16) | service; }
@inline export function destinationGroup(d: i32): i32 { return d >> 16; }
@inline export function destinationService(d: i32): i32 { return d & 0xffff; }

/** The service named exactly `name`, in any group (the first in group order). */
export function findService(rules: CRuleSet, p: usize, l: usize): i32 {
  return rules.serviceIndex.get(p, l);
}

/** The service whose hosts include `host` (compared ignoring the request's case; hosts are lowercase). */
export function findHost(rules: CRuleSet, p: usize, l: usize): i32 {
  return rules.hostIndex.get(p, l);
}

/** The service with the longest `paths` prefix of the request path (the first one on a tie). */
export function findPath(rules: CRuleSet, p: usize, l: usize): i32 {
  const groups = rules.groups;
  let best: usize = 0;
  let found = NO_DESTINATION;
  for (let g = 0; g < groups.length; g++) {
    const services = unchecked(groups[g]).services;
    for (let s = 0; s < services.length; s++) {
      const paths = unchecked(services[s]).paths;
      for (let i = 0; i < paths.length; i++) {
        const n = unchecked(paths[i]);
        const nl = <usize>n.byteLength;
        if ((nl > best || found == NO_DESTINATION) && startsWith(p, l, n.dataStart, nl)) {
          best = nl;
          found = destination(g, s);
        }
      }
    }
  }
  return found;
}

/** Outbound side or edge (`edge`): route metadata service, then host, then (edge only) path prefix. */
export function findDestination(rules: CRuleSet, meta: RouteMetadata, view: RequestView, edge: bool): i32 {
  let d = NO_DESTINATION;
  if (meta.serviceLen > 0) d = findService(rules, meta.servicePtr, meta.serviceLen);
  if (d == NO_DESTINATION && view.hostLen > 0) d = findHost(rules, view.hostPtr, view.hostLen);
  if (d == NO_DESTINATION && edge && view.pathPtr != 0) d = findPath(rules, view.pathPtr, view.pathLen);
  return d;
}

const K_SERVICE = utf8("service");
const K_LANE = utf8("lane");

/**
 * The matched route's `graylane` metadata (`service`, `lane`), read in place from the string map
 * Envoy serialises as pairs. Malformed metadata reads as none.
 */
export class RouteMetadata extends PairsIndex {
  servicePtr: usize = 0;
  serviceLen: usize = 0;
  lanePtr: usize = 0;
  laneLen: usize = 0;

  load(buf: usize, len: usize): bool {
    this.clear();
    if (!super.load(buf, len)) return false;
    for (let i = 0; i < this.count; i++) {
      const k = this.nameAt(i);
      const kl = this.nameLenAt(i);
      if (equalBytes(k, kl, K_SERVICE.dataStart, <usize>K_SERVICE.byteLength)) { this.servicePtr = this.valueAt(i); this.serviceLen = this.valueLenAt(i); }
      else if (equalBytes(k, kl, K_LANE.dataStart, <usize>K_LANE.byteLength)) { this.lanePtr = this.valueAt(i); this.laneLen = this.valueLenAt(i); }
    }
    return true;
  }

  /** Whether the route Envoy matched before the filter ran says it sends to `lane`. */
  servesLane(lane: Uint8Array): bool {
    return this.laneLen > 0 && equalBytes(this.lanePtr, this.laneLen, lane.dataStart, <usize>lane.byteLength);
  }

  clear(): void {
    this.count = 0;
    this.serviceLen = 0;
    this.laneLen = 0;
  }
}
