// lane/edge.ts (what outsiders may not set), the baggage rewrite of lane/propagation.ts and the
// sticky cookie of lane/cookie.ts, called directly through the test entry.
import { beforeAll, describe, expect, it } from "vitest";
import { LaneProbe } from "../support/lane-probe.js";
import { mockGroup } from "../support/filter.js";

let probe: LaneProbe;
beforeAll(async () => { probe = await LaneProbe.load(); });

function plan(baggage: number): { headers: string[]; baggage: boolean } {
  return { headers: probe.outLines(), baggage: baggage === 1 };
}
const edgePlan = () => plan(probe.x.edgePlan(0));
const unrouted = (edge: boolean) => plan(probe.x.unroutedPlan(edge ? 1 : 0));

const group = (name: string, extra: Record<string, unknown>) => ({ name, services: [{ name: name + "-svc" }], ...extra });

describe("edge strip plan", () => {
  it("before any RuleSet: the default lane and route headers and the baggage member", () => {
    expect(plan(probe.x.edgePlan(1))).toEqual({ headers: ["x-graylane-lane", "x-graylane-route"], baggage: true });
  });

  it("strips an untrusting group's lane and route headers and the baggage member", () => {
    probe.loadGroups([group("a", { laneHeader: "x-a-lane", routeHeader: "x-a-route" })]);
    expect(edgePlan()).toEqual({ headers: ["x-a-lane", "x-a-route"], baggage: true });
  });

  it("keeps a lane header that is also the group's override header", () => {
    probe.loadGroups([group("a", { laneHeader: "x-pick", overrideHeader: "x-pick" })]);
    expect(edgePlan()).toEqual({ headers: ["x-graylane-route"], baggage: true });
  });

  it("strips nothing for a group that trusts incoming headers", () => {
    probe.loadGroups([group("a", { trustIncoming: true, laneHeader: "x-a-lane" })]);
    expect(edgePlan()).toEqual({ headers: [], baggage: false });
  });

  it("names each header once across groups, and only the untrusting groups'", () => {
    probe.loadGroups([
      group("a", {}),
      group("b", {}),
      group("c", { laneHeader: "x-c-lane", routeHeader: "x-c-route", trustIncoming: true }),
      // d's lane header is a's: a strips it even though d uses it as its override header
      group("d", { laneHeader: "x-d-lane", overrideHeader: "x-graylane-lane" }),
    ]);
    expect(edgePlan()).toEqual({ headers: ["x-graylane-lane", "x-graylane-route", "x-d-lane"], baggage: true });
  });

  it("a request with no destination loses every group's route header, trusting groups' too", () => {
    probe.loadGroups([
      group("a", {}),
      group("c", { routeHeader: "x-c-route", trustIncoming: true }),
    ]);
    expect(unrouted(false)).toEqual({ headers: ["x-graylane-route", "x-c-route"], baggage: false });
    // at the edge the edge plan already removed the untrusting group's
    expect(unrouted(true)).toEqual({ headers: ["x-c-route"], baggage: false });
  });
});

describe("baggage", () => {
  const strip = (headers: Array<[string, string]>) => {
    probe.request(headers);
    return probe.x.baggageStrip() === 1 ? probe.outText() : null;
  };

  it("drops the graylane member (with its properties), keeping the others in order", () => {
    expect(strip([["baggage", "a=1, graylane=canary;p=1 , b=2"]])).toBe("a=1,b=2");
    expect(strip([["baggage", "a=1"], ["Baggage", "graylane=x"], ["baggage", "c=3"]])).toBe("a=1,c=3");
  });

  it("says when the header goes altogether", () => {
    expect(strip([["baggage", "graylane=canary"]])).toBe("");
  });

  it("leaves baggage without a graylane member alone", () => {
    expect(strip([["baggage", "a=1,graylanes=2"]])).toBeNull();
    expect(strip([["x-other", "graylane=1"]])).toBeNull();
  });

  it("sends on the other members and the decided lane last", () => {
    probe.request([["baggage", "graylane=old,a=1"], ["baggage", "b=2"]]);
    probe.x.baggageOut(...probe.put("canary"));
    expect(probe.outText()).toBe("a=1,b=2,graylane=canary");
    probe.request([]);
    probe.x.baggageOut(...probe.put("base"));
    expect(probe.outText()).toBe("graylane=base");
  });
});

describe("sticky cookie", () => {
  const id = "0123456789abcdef";
  const cookie = (stickyKey: Record<string, unknown>, maxAge?: number) => {
    probe.loadGroups([mockGroup({ stickyKey })], maxAge === undefined ? undefined : (rs) => { rs.groups[0].stickyKey!.maxAgeSeconds = maxAge; });
    probe.x.cookie(0, probe.put(id)[0]);
    return probe.outText();
  };

  it("carries the id, Path, Max-Age and the flags", () => {
    expect(cookie({ cookie: "uid", generate: true, maxAgeSeconds: 86400 })).toBe(`uid=${id}; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax`);
  });

  it("leaves Max-Age out when the RuleSet has none (a session cookie; the compiler defaults it)", () => {
    expect(cookie({ cookie: "gl_uid", generate: true }, 0)).toBe(`gl_uid=${id}; Path=/; HttpOnly; SameSite=Lax`);
    expect(cookie({ cookie: "gl_uid", generate: true }, 7)).toBe(`gl_uid=${id}; Path=/; Max-Age=7; HttpOnly; SameSite=Lax`);
  });
});
