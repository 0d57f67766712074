// The C peer of bench/envoy-overhead must follow Graylane: its extra calls come from the pinned
// counts (test/fixtures/host-calls.json), and a call it cannot make stops the build instead of
// leaving it behind; its built-in RuleSet tables (trace-memory seeds) are the filter's.
import { describe, expect, it } from "vitest";
import { callsHeader, pinnedCalls, ruleSetHeader, traceSeed } from "../../bench/support/peers.js";
import { benchGroupsJson, benchRuleSet } from "../../bench/support/ruleset.js";
import { LaneProbe } from "../support/lane-probe.js";

const define = (header: string, name: string) => Number(new RegExp(`#define ${name} (\\d+)`).exec(header)?.[1]);

describe("bench/peers: the C peer follows the filter", () => {
  it("its extra calls per hook are the pinned ones beyond the minimal work", () => {
    const pins = pinnedCalls();
    for (const path of ["outbound", "inbound", "noGroup"] as const) {
      const h = callsHeader(path);
      const req = pins[path].hooks.proxy_on_request_headers.host;
      const resp = pins[path].hooks.proxy_on_response_headers?.host ?? {};
      expect(define(h, "GL_REQ_CLOCK"), path).toBe(req.proxy_get_current_time_nanoseconds ?? 0);
      expect(define(h, "GL_REQ_METRICS"), path).toBe(req.proxy_increment_metric ?? 0);
      // the route metadata is the minimal work's own property read on the outbound side
      expect(define(h, "GL_REQ_DIRECTION"), path).toBe((req.proxy_get_property ?? 0) - (path === "inbound" ? 0 : 1));
      expect(define(h, "GL_RESP_CLOCK"), path).toBe(resp.proxy_get_current_time_nanoseconds ?? 0);
      expect(define(h, "GL_RESP_HEADER_VALUES"), path).toBe(resp.proxy_get_header_map_value ?? 0);
      expect(define(h, "GL_HOOK_ON_LOG"), path).toBe(pins[path].hooks.proxy_on_log ? 1 : 0);
    }
  });

  it("a call or hook Graylane adds that the peer cannot make stops the peer's build", () => {
    const pins = pinnedCalls();
    const more = structuredClone(pins);
    more.outbound.hooks.proxy_on_request_headers.host.proxy_add_header_map_value = 1;
    expect(() => callsHeader("outbound", more)).toThrow(/proxy_add_header_map_value.*lane_peer\.c/);
    const hook = structuredClone(pins);
    hook.outbound.hooks.proxy_on_request_body = { host: {}, intoModule: {} };
    expect(() => callsHeader("outbound", hook)).toThrow(/proxy_on_request_body/);
  });

  it("the built-in trace-memory seeds are the filter's", async () => {
    const probe = await LaneProbe.load();
    probe.loadGroups(benchGroupsJson());
    const { ruleSet } = benchRuleSet();
    const header = ruleSetHeader(65536, 60_000);
    ruleSet.groups.forEach((g, i) => {
      expect(traceSeed(g.name)).toBe(probe.x.groupSeed(i) >>> 0);
      expect(header).toContain(`${traceSeed(g.name)}u`);
    });
  });
});
