// Which incoming headers a request loses before the decision, so that outsiders cannot pick a lane
// (DESIGN.md "The edge"). The plans depend only on the RuleSet, so they are built once when one is
// applied; per request the plugin removes the names the request carries. Pure: no host calls.
import { DEFAULT_HEADERS, HeaderSet, ID_DEFAULT_LANE, ID_DEFAULT_ROUTE } from "./headerset";
import { CRuleSet } from "./rules";

/**
 * Header names to remove, each once, by their ids in the HeaderSet the request view uses (the
 * RuleSet's; DEFAULT_HEADERS before one), and whether the baggage `graylane` member goes too.
 */
export class StripPlan {
  readonly headers: Array<Uint8Array> = [];
  readonly ids: Array<i32> = [];
  baggage: bool = false;

  has(id: i32): bool {
    return this.ids.includes(id);
  }

  add(set: HeaderSet, id: i32): void {
    if (this.has(id)) return;
    this.headers.push(unchecked(set.names[id]));
    this.ids.push(id);
  }
}

/**
 * At the edge: every untrusting group's lane header (unless it is also that group's override header)
 * and route header, and the baggage lane member when any group is untrusting — whatever the
 * destination. With no RuleSet yet, DESIGN.md's default lane and route headers and the baggage member.
 */
export function edgeStripPlan(rules: CRuleSet | null): StripPlan {
  const plan = new StripPlan();
  if (rules == null) {
    plan.add(DEFAULT_HEADERS, ID_DEFAULT_LANE);
    plan.add(DEFAULT_HEADERS, ID_DEFAULT_ROUTE);
    plan.baggage = true;
    return plan;
  }
  for (let i = 0; i < rules.groups.length; i++) {
    const g = unchecked(rules.groups[i]);
    if (g.trustIncoming) continue;
    plan.baggage = true;
    if (g.laneHeaderId != g.overrideHeaderId) plan.add(rules.headers, g.laneHeaderId);
    plan.add(rules.headers, g.routeHeaderId);
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
    const rh = unchecked(rules.groups[i]).routeHeaderId;
    if (already == null || !already.has(rh)) plan.add(rules.headers, rh);
  }
  return plan;
}
