// filter.wasm in a real Envoy (1.40, V8, two workers) at the edge: Envoy routes on the route header
// the filter writes (after clear_route_cache), outsiders' lane headers are stripped, and the filter's
// stats show in the admin endpoint. The full multi-hop demo topology comes with issue #5.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { base64, compileGroups } from "../support/filter.js";
import { edgeConfig, envoyBin, startEdgeEnvoy, validate, type EdgeEnvoy } from "../support/envoy.js";

const group = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
let envoy: EdgeEnvoy;

beforeAll(async () => {
  envoy = await startEdgeEnvoy(envoyBin(), edgeConfig({ edge: true, ruleSet: base64(compileGroups([group]).bytes) }));
}, 30_000);
afterAll(async () => { await envoy?.stop(); });

async function get(headers: Record<string, string>): Promise<string> {
  const res = await fetch(`${envoy.listener}/mock`, { headers });
  return res.text();
}

describe("filter.wasm in Envoy at the edge", () => {
  it("routes by the lane it decides, on every worker", async () => {
    for (let i = 0; i < 20; i++) { // new connections land on both workers
      expect(await get({ "x-asm-prefer-tag": "canary", connection: "close" })).toBe("mocka(v2)");
      expect(await get({ connection: "close" })).toBe("mocka(v1)");
    }
    expect(await get({ grayrelease: "version2" })).toBe("mocka(v2)");
  });

  it("strips an outsider's route and lane headers", async () => {
    expect(await get({ "x-graylane-route": "canary" })).toBe("mocka(v1)");
    expect(await get({ "x-graylane-lane": "canary", baggage: "graylane=canary" })).toBe("mocka(v1)");
  });

  it("counts decisions in Envoy stats", async () => {
    const stats = await (await fetch(`${envoy.admin}/stats?filter=wasmcustom`)).text();
    expect(Number(/wasmcustom\.graylane\.group\.mock\.lane\.canary\.source\.override\.requests: (\d+)/.exec(stats)?.[1])).toBeGreaterThanOrEqual(20);
    expect(Number(/wasmcustom\.graylane\.group\.mock\.lane\.canary\.source\.rule\.requests: (\d+)/.exec(stats)?.[1])).toBe(1);
    expect(envoy.log()).toContain("graylane 0.1.0: configured (edge)");
  });

  it("Envoy refuses a configuration the filter refuses", () => {
    const r = validate(envoyBin(), edgeConfig({ edeg: true }));
    expect(r.ok).toBe(false);
    expect(r.output).toContain("edeg: unknown key");
  });
});
