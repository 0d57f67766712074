// Which incoming headers a request loses before the decision, so that outsiders cannot pick a lane
// (DESIGN.md "The edge"). The plans depend only on the RuleSet, so they are built once when one is
// applied; per request the plugin removes the names the request carries. Pure: no host calls.
import { equalBytes, utf8 } from "./bytes";
import { ID_DEFAULT_LANE, ID_DEFAULT_ROUTE } from "./headerset";
import { CRuleSet } from "./rules";

/** Header names to remove, each once (with their ids in the RuleSet's HeaderSet), and whether the baggage `graylane` member goes too. */
export class StripPlan {
  readonly headers: Array<Uint8Array> = [];
  readonly ids: Array<i32> = [];
  baggage: bool = false;

  has(name: Uint8Array): bool {
    for (let i = 0; i < this.headers.length; i++) {
      const h = unchecked(this.headers[i]);
      if (equalBytes(h.dataStart, <usize>h.byteLength, name.dataStart, <usize>name.byteLength)) return true;
    }
    return false;
  }

  add(name: Uint8Array, id: i32): void {
    if (this.has(name)) return;
    this.headers.push(name);
    this.ids.push(id);
  }
}

const H_DEFAULT_LANE = utf8("x-graylane-lane");
const H_DEFAULT_ROUTE = utf8("x-graylane-route");

/**
 * At the edge: every untrusting group's lane header (unless it is also that group's override header)
 * and route header, and the baggage lane member when any group is untrusting — whatever the
 * destination. With no RuleSet yet, DESIGN.md's default lane and route headers and the baggage member.
 */
export function edgeStripPlan(rules: CRuleSet | null): StripPlan {
  const plan = new StripPlan();
  if (rules == null) {
    plan.add(H_DEFAULT_LANE, ID_DEFAULT_LANE);
    plan.add(H_DEFAULT_ROUTE, ID_DEFAULT_ROUTE);
    plan.baggage = true;
    return plan;
  }
  for (let i = 0; i < rules.groups.length; i++) {
    const g = unchecked(rules.groups[i]);
    if (g.trustIncoming) continue;
    plan.baggage = true;
    const lh = g.laneHeader;
    if (!equalBytes(lh.dataStart, <usize>lh.byteLength, g.overrideHeader.dataStart, <usize>g.overrideHeader.byteLength)) plan.add(lh, g.laneHeaderId);
    plan.add(g.routeHeader, g.routeHeaderId);
  }
  return plan;
}

/**
 * A request with no destination in any group, on any side: a route header nobody decided must not
 * steer routing, so every group's route header goes. `already`: names an earlier plan removed
 * from the same request (the edge plan), left out here.
 */
export function unroutedStripPlan(rules: CRuleSet, already: StripPlan | null): StripPlan {
  const plan = new StripPlan();
  for (let i = 0; i < rules.groups.length; i++) {
    const rh = unchecked(rules.groups[i]).routeHeader;
    if (already == null || !already.has(rh)) plan.add(rh, unchecked(rules.groups[i]).routeHeaderId);
  }
  return plan;
}
