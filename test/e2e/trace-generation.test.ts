// Issue 14, item 1, end to end through real Envoys (the demo topology of demo/stack.ts): weighted
// users who send no trace header, apps that forward only the trace header (my-request-id), mockc in
// the canary lane. The gateway makes a trace id for each request, mocka's inbound sidecar remembers
// it with the lane, and mocka's outbound sidecar restores the lane for the call that carries only
// that id: every mocka(v2) answer continues to mockc(v2), and /v1/traffic shows mockc's canary
// share equal to mocka's. With generateTraceId off, the lane is lost at the second hop (as before).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { startStack, type Stack } from "../../demo/stack.js";
import { envoyBin } from "../support/envoy.js";
import { asUser, pool } from "../support/users.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
/** Users sent (the issue asks for 2,000). */
const USERS = Number(process.env.E2E_TRACE_USERS || 2000);
const WEIGHT = 10;
// Trace memory is a fixed table of slots (65,536 by default, docs/decisions.md): a hop whose slot
// another trace overwrites between its inbound write and its outbound read (a few ms apart) loses
// the memory, and that request falls to the later decision steps (here the weight, keyed by the
// trace id). At 32 requests in flight that is about 32 ÷ 65,536 per hop; one such request was seen
// in a run of 2,000 users. Allowed: 0.25% of the users, at least 2.
const LOST_MAX = Math.max(2, Math.ceil(USERS * 0.0025));
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ group: demoGroup, envoyBin: envoyBin(), reportIntervalMs: 1000 });
}, 60_000);
afterAll(async () => { await stack?.close(); });

const V1 = "mocka(v1)->mockb(v1)->mockc(v1)";
const A2C2 = "mocka(v2)->mockb(v1)->mockc(v2)";

const user = (id: string) => asUser(stack.gatewayUrl, id);

async function apply(extra: Record<string, unknown>): Promise<void> {
  const body = { ...demoGroup, lanes: [{ name: "canary", services: ["mocka", "mockc"], fallback: "base", weight: WEIGHT }], ...extra };
  const res = await fetch(`${stack.server.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`PUT ${res.status}: ${await res.text()}`);
  await stack.waitAllAcked();
}

type Rows = Array<{ service: string; lane: string; requests: number; observedShare: number }>;
async function traffic(): Promise<Rows> {
  await fetch(`${stack.server.url}/v1/traffic/report-now`, { method: "POST" });
  return ((await (await fetch(`${stack.server.url}/v1/traffic?group=mock&window=1h`)).json()) as { services: Rows }).services;
}
const count = (rows: Rows, service: string, lane: string) => rows.find((r) => r.service === service && r.lane === lane)?.requests ?? 0;
const total = (rows: Rows, service: string) => rows.filter((r) => r.service === service).reduce((n, r) => n + r.requests, 0);

async function gatewayStat(name: string): Promise<number> {
  const gw = stack.envoys.find((e) => e.id === "gateway")!;
  const text = await (await fetch(`${gw.admin}/stats?filter=${encodeURIComponent(name)}`)).text();
  return Number(new RegExp(`${name.replace(/\./g, "\\.")}: (\\d+)`).exec(text)?.[1] ?? 0);
}

describe("trace ids made at the edge, through Envoy", () => {
  it(`${USERS} weighted users without a trace header: every mocka(v2) answer continues to mockc(v2) (but for slot collisions, ≤ 0.25%); mockc's canary share equals mocka's`, async () => {
    await apply({});
    const before = await gatewayStat("wasmcustom.graylane.trace_generated");
    const answers = await pool(USERS, 32, (i) => user(`user-${i}`));
    const a2 = answers.filter((a) => a.startsWith("mocka(v2)"));
    const a2c2 = a2.filter((a) => a === A2C2);
    const others = answers.filter((a) => a !== A2C2 && a !== V1);
    const generated = (await gatewayStat("wasmcustom.graylane.trace_generated")) - before;
    // Counted on each service's inbound side; wait until every filter reported all of them.
    const end = Date.now() + 20_000;
    let rows = await traffic();
    while ((total(rows, "mocka") < USERS || total(rows, "mockc") < USERS) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 300));
      rows = await traffic();
    }
    const share = (service: string) => rows.find((r) => r.service === service && r.lane === "canary")?.observedShare ?? 0;
    console.log(`trace-generation e2e: ${USERS} users, ${a2.length} mocka(v2) answers, ${a2c2.length} continued to mockc(v2), ` +
      `${others.length} other answers; gateway trace ids made: ${generated}; /v1/traffic canary: mocka ${count(rows, "mocka", "canary")} ` +
      `(${(share("mocka") * 100).toFixed(2)}%), mockc ${count(rows, "mockc", "canary")} (${(share("mockc") * 100).toFixed(2)}%)`);
    expect(others.length).toBeLessThanOrEqual(LOST_MAX);
    expect(a2.length / USERS).toBeGreaterThan(WEIGHT / 100 - 0.03);
    expect(a2.length / USERS).toBeLessThan(WEIGHT / 100 + 0.03);
    expect(a2.length - a2c2.length).toBeLessThanOrEqual(LOST_MAX);
    expect(generated).toBe(USERS);
    expect(total(rows, "mocka")).toBe(USERS);
    expect(total(rows, "mockc")).toBe(USERS);
    expect(Math.abs(count(rows, "mockc", "canary") - count(rows, "mocka", "canary"))).toBeLessThanOrEqual(LOST_MAX);
    expect(count(rows, "mocka", "canary")).toBe(a2.length);
    expect(Math.abs(share("mockc") - share("mocka"))).toBeLessThanOrEqual(LOST_MAX / USERS);
    // The same users again: the same lanes (the generated id is no sticky key).
    const again = await pool(USERS, 32, (i) => user(`user-${i}`));
    expect(again.flatMap((a, i) => (a === answers[i] ? [] : [`user-${i}`])).length).toBeLessThanOrEqual(2 * LOST_MAX);
  }, 240_000);

  it("generateTraceId false: the lane is lost at the second hop, as before the change", async () => {
    await apply({ generateTraceId: false });
    const before = await gatewayStat("wasmcustom.graylane.trace_generated");
    const answers = await pool(400, 32, (i) => user(`other-${i}`));
    const a2 = answers.filter((a) => a.startsWith("mocka(v2)"));
    expect(a2.length).toBeGreaterThan(0);
    expect(a2.filter((a) => a === A2C2)).toEqual([]);
    expect(await gatewayStat("wasmcustom.graylane.trace_generated")).toBe(before);
  }, 120_000);
});
