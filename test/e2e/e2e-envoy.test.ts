// End to end through real Envoys (1.40, V8, --concurrency 2): the demo topology of demo/stack.ts —
// the control plane, mocka → mockb → mockc with base (v1) and canary (v2) instances, one sidecar
// Envoy per instance, the ingress gateway — one topology for the whole file, a unique trace id per
// request. Prints the time from PUT accepted to the first request routed by the new rule.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { startStack, type Stack } from "../../demo/stack.js";
import { envoyBin } from "../support/envoy.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
let stack: Stack;
let traceSeq = 0;
const started = performance.now();

beforeAll(async () => {
  stack = await startStack({ group: demoGroup, envoyBin: envoyBin(), reportIntervalMs: 1000, rollout: { tickMs: 50, reportSettleMs: 200 } });
}, 60_000);
afterAll(async () => {
  if (process.env.E2E_ENVOY_LOGS) {
    for (const e of stack?.envoys ?? []) {
      const lines = e.log().split("\n").filter((l) => /wasm|panic|abort|error|critical/i.test(l));
      if (lines.length) console.log(`--- ${e.id}\n${lines.slice(0, 20).join("\n")}`);
    }
  }
  await stack?.close();
  console.log(`e2e-envoy: suite wall time ${((performance.now() - started) / 1000).toFixed(1)} s`);
});

const V1 = "mocka(v1)->mockb(v1)->mockc(v1)";
const A2 = "mocka(v2)->mockb(v1)->mockc(v1)";
const A2C2 = "mocka(v2)->mockb(v1)->mockc(v2)";

async function get(headers: Record<string, string> = {}, path = "/mock"): Promise<string> {
  const res = await fetch(`${stack.gatewayUrl}${path}`, { headers: { "my-request-id": `e2e-${process.pid}-${++traceSeq}`, ...headers } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${body}`);
  return body;
}

/** GET /mock through the gateway with these raw header lines (names as given, repeats kept). */
function raw(lines: string[]): Promise<string> {
  const url = new URL(stack.gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path: "/mock", method: "GET",
      headers: ["Host", "mocka", "my-request-id", `e2e-${process.pid}-${++traceSeq}`, "Connection", "close", ...lines] as unknown as Record<string, string> }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
    });
    req.on("error", reject);
    req.end();
  });
}

/** PUT the group (the demo's with `lanes` replaced); resolves when accepted. */
async function put(lanes: unknown[], extra: Record<string, unknown> = {}): Promise<number> {
  const res = await fetch(`${stack.server.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...demoGroup, ...extra, lanes }) });
  const at = performance.now();
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT ${res.status}: ${text}`);
  return at;
}
async function apply(lanes: unknown[], extra: Record<string, unknown> = {}): Promise<void> {
  await put(lanes, extra);
  await stack.waitAllAcked();
}
const canary = (services: string[], more: Record<string, unknown> = {}) => ({ name: "canary", services, fallback: "base", ...more });

async function pool<T>(n: number, width: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < n) { const i = next++; out[i] = await f(i); } }));
  return out;
}

describe("the lane scenario through Envoy", () => {
  it("override header → mocka canary only; without it all base", async () => {
    expect(await get({ "x-asm-prefer-tag": "canary" })).toBe(A2);
    expect(await get({ "x-asm-prefer-tag": "canary", "my-request-id": "10000" })).toBe(A2);
    expect(await get()).toBe(V1);
    // new connections land on both gateway workers
    for (let i = 0; i < 10; i++) {
      expect(await get({ "x-asm-prefer-tag": "canary", connection: "close" })).toBe(A2);
      expect(await get({ connection: "close" })).toBe(V1);
    }
  });

  it("a client at the edge cannot smuggle a lane in: route, lane, baggage, mixed case, repeated, no group", async () => {
    expect(await get({ "x-graylane-route": "canary" })).toBe(V1);
    expect(await get({ "x-graylane-lane": "canary" })).toBe(V1);
    expect(await get({ baggage: "graylane=canary" })).toBe(V1);
    expect(await get({ "x-graylane-lane": "canary", "x-graylane-route": "canary", baggage: "k=v,graylane=canary" })).toBe(V1);
    // exact bytes on the wire: mixed-case names and repeated header lines
    expect(await raw(["X-GrayLane-Route", "canary", "X-GRAYLANE-LANE", "canary", "BaGGage", "graylane=canary"])).toBe(V1);
    expect(await raw(["x-graylane-route", "canary", "x-graylane-route", "canary", "x-graylane-lane", "canary", "x-graylane-lane", "canary",
      "baggage", "a=1", "baggage", "graylane=canary"])).toBe(V1);
    // the override still works, and a smuggled route header does not beat it
    expect(await raw(["x-asm-prefer-tag", "canary", "x-graylane-route", "base"])).toBe(A2);
    // a request whose service is in no lane group: no decision, and still no smuggled route
    await apply([], { services: [{ name: "elsewhere" }] });
    try {
      expect(await raw(["x-graylane-route", "canary", "x-graylane-lane", "canary", "baggage", "graylane=canary"])).toBe(V1);
    } finally {
      await apply(demoGroup.lanes);
    }
  });

  it("lane [mocka, mockc]: the lane crosses base mockb by trace memory, and by the forwarded lane header", async () => {
    await apply([canary(["mocka", "mockc"], { match: demoGroup.lanes[0].match })]);
    for (let i = 0; i < 10; i++) expect(await get({ "x-asm-prefer-tag": "canary", connection: "close" })).toBe(A2C2);
    expect(await get()).toBe(V1);
    stack.setForwardLane(true);
    try {
      for (let i = 0; i < 10; i++) expect(await get({ "x-asm-prefer-tag": "canary", connection: "close" })).toBe(A2C2);
      expect(await get()).toBe(V1);
    } finally {
      stack.setForwardLane(false);
    }
    await apply(demoGroup.lanes);
    expect(await get({ "x-asm-prefer-tag": "canary" })).toBe(A2);
  });

  const UA_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
  const UA_ANDROID_FF = "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0";
  const UA_CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
  const UA_EDGE = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91";
  const contentCases: Array<[string, Record<string, unknown>, Record<string, string>, Record<string, string>, string?, string?]> = [
    ["header exact", { headers: { grayrelease: { exact: "version2" } } }, { grayrelease: "version2" }, { grayrelease: "version2x" }],
    ["cookie regex", { cookies: { uid: { regex: "^1[0-9]{3}$" } } }, { cookie: "a=b; uid=1234" }, { cookie: "a=b; uid=12345" }],
    ["query", { queryParams: { beta: { exact: "on" } } }, {}, {}, "/mock?x=1&beta=on", "/mock?beta=off"],
    ["iPhone user agent", { os: ["iOS"] }, { "user-agent": UA_IPHONE }, { "user-agent": UA_ANDROID_FF }],
    ["Chrome user agent", { browser: ["Chrome"] }, { "user-agent": UA_CHROME }, { "user-agent": UA_EDGE }],
  ];
  for (const [name, block, hit, miss, hitPath, missPath] of contentCases) {
    it(`content rule through Envoy: ${name} → canary, its near-miss → base`, async () => {
      await apply([canary(["mocka"], { match: [block] })]);
      for (let i = 0; i < 4; i++) {
        expect(await get({ ...hit, connection: "close" }, hitPath)).toBe(A2);
        expect(await get({ ...miss, connection: "close" }, missPath)).toBe(V1);
      }
    });
  }

  it("weight 20%: 5,000 distinct user keys land 20% ± 2 on canary, each key sticky", async () => {
    await apply([canary(["mocka"], { weight: 20 })]);
    const N = 5000;
    const first = await pool(N, 64, async (i) => (await get({ "x-user-id": `user-${i}` })) === A2);
    const share = first.filter(Boolean).length / N;
    console.log(`e2e-envoy: weight 20 → ${(share * 100).toFixed(2)}% canary over ${N} keys`);
    expect(share).toBeGreaterThanOrEqual(0.18);
    expect(share).toBeLessThanOrEqual(0.22);
    const again = await pool(N, 64, async (i) => (await get({ "x-user-id": `user-${i}`, connection: i % 2 ? "close" : "keep-alive" })) === A2);
    const moved = again.flatMap((c, i) => (c === first[i] ? [] : [`user-${i}`]));
    expect(moved).toEqual([]);
  }, 120_000);

  it("traffic: /v1/traffic counts exactly the requests that entered mocka, by lane", async () => {
    await apply(demoGroup.lanes);
    const mocka = async () => {
      await fetch(`${stack.server.url}/v1/traffic/report-now`, { method: "POST" });
      const s = (await (await fetch(`${stack.server.url}/v1/traffic?group=mock&window=1h`)).json()) as { services: Array<{ service: string; lane: string; requests: number }> };
      const rows = s.services.filter((r) => r.service === "mocka");
      return { base: rows.find((r) => r.lane === "base")?.requests ?? 0, canary: rows.find((r) => r.lane === "canary")?.requests ?? 0 };
    };
    const settled = async () => { // counts stop moving once every filter reported
      let last = await mocka();
      for (let stable = 0; stable < 3;) {
        await new Promise((r) => setTimeout(r, 400));
        const now = await mocka();
        stable = now.base === last.base && now.canary === last.canary ? stable + 1 : 0;
        last = now;
      }
      return last;
    };
    const before = await settled();
    await pool(70, 8, () => get());
    await pool(30, 8, () => get({ "x-asm-prefer-tag": "canary" }));
    const end = Date.now() + 15_000;
    let after = await mocka();
    while ((after.base - before.base !== 70 || after.canary - before.canary !== 30) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      after = await mocka();
    }
    expect({ base: after.base - before.base, canary: after.canary - before.canary }).toEqual({ base: 70, canary: 30 });
  });

  it("control plane down: routing goes on; a RuleSet the filter refuses is NACKed and shown; restarted: a new change arrives", async () => {
    await apply(demoGroup.lanes);
    await stack.stopControlPlane();
    for (let i = 0; i < 6; i++) {
      expect(await get({ "x-asm-prefer-tag": "canary", connection: "close" })).toBe(A2);
      expect(await get({ connection: "close" })).toBe(V1);
    }
    // Back with the test-only hook: every snapshot lists a required feature the filter lacks.
    await stack.startControlPlane({ requiredFeatures: ["graylane.test/no-such-feature"] });
    const ids = stack.envoys.map((e) => e.id);
    const end = Date.now() + 45_000;
    let nacked: string[] = [];
    let errors: string[] = [];
    while (Date.now() < end) {
      const st = await stack.status();
      const live = st.nodes.filter((n) => n.subscribers.some((x) => x.connected && x.lastNack?.version === st.version));
      nacked = live.map((n) => n.nodeId);
      errors = live.flatMap((n) => n.subscribers.map((x) => x.lastNack?.error ?? "")).filter(Boolean);
      if (ids.every((id) => nacked.includes(id))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(nacked.sort()).toEqual([...ids].sort());
    console.log(`e2e-envoy: NACK through Envoy: ${errors[0]}`);
    expect(errors[0]).toMatch(/no-such-feature/);
    expect(await get({ "x-asm-prefer-tag": "canary" })).toBe(A2); // the old rules keep routing
    expect(await get()).toBe(V1);
    // Restarted normally: the filters reconnect, ACK, and a new change reaches them.
    await stack.stopControlPlane();
    await stack.startControlPlane();
    await stack.waitAllAcked(45_000);
    await apply([canary(["mocka", "mockc"], { match: demoGroup.lanes[0].match })]);
    expect(await get({ "x-asm-prefer-tag": "canary" })).toBe(A2C2);
    await apply(demoGroup.lanes);
  }, 120_000);

  it("PUT accepted → first request routed by the new rule (p50/p99 over 20 changes)", async () => {
    await apply(demoGroup.lanes);
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const withC = i % 2 === 0;
      const want = withC ? A2C2 : A2;
      const at = await put([canary(withC ? ["mocka", "mockc"] : ["mocka"], { match: demoGroup.lanes[0].match })]);
      const end = at + 10_000;
      for (;;) {
        if ((await get({ "x-asm-prefer-tag": "canary" })) === want) break;
        if (performance.now() > end) throw new Error(`change ${i} not routed after 10 s`);
      }
      latencies.push(performance.now() - at);
      await stack.waitAllAcked();
    }
    latencies.sort((a, b) => a - b);
    const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)];
    console.log(`e2e-envoy: PUT accepted → first request routed by the new rule: p50 ${q(0.5).toFixed(1)} ms, p99 ${q(0.99).toFixed(1)} ms (20 changes, max ${latencies.at(-1)!.toFixed(1)} ms)`);
    expect(q(0.99)).toBeLessThan(5_000);
  });
});

describe("progressive releases through Envoy", () => {
  type Rel = { status: string; weight: number; currentStep: number; reason?: string; analysisRun?: { failures: number; successes: number; intervals: Array<{ verdict: string; requests: number }> } };
  const INTERVAL_MS = 1500;
  const analysis = { interval: `${INTERVAL_MS}ms`, count: 2, failureLimit: 1, minRequests: 20, deadline: "30s", metrics: [{ name: "error-rate", max: 0.05 }, { name: "p99-latency", maxMs: 1000 }] };
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.server.url}${path}`, { method, headers: { "content-type": "application/json", "x-graylane-actor": "e2e" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json() as { release: Rel; errors?: unknown };
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json.release;
  };
  /** Steady traffic of distinct users through the gateway until stopped; counts the answers by status. */
  function load() {
    let on = true;
    const codes = new Map<number, number>();
    let user = 0;
    const done = pool(8, 8, async () => {
      while (on) {
        const res = await fetch(`${stack.gatewayUrl}/mock`, { headers: { "x-user-id": `rel-${process.pid}-${++user}`, "my-request-id": `e2e-${process.pid}-${++traceSeq}` } });
        await res.arrayBuffer();
        codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
      }
    });
    return { codes, stop: async () => { on = false; await done; } };
  }
  async function until(name: string, want: (r: Rel) => boolean, ms = 30_000): Promise<Rel> {
    const end = Date.now() + ms;
    for (;;) {
      const r = await api("GET", `/v1/releases/${name}`);
      if (want(r)) return r;
      if (Date.now() > end) throw new Error(`release ${name} still ${JSON.stringify(r)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  it("a canary failing 30% of requests is rolled back within two analysis intervals", async () => {
    await apply(demoGroup.lanes);
    stack.setFailRate("mocka", "v2", 0.3);
    const traffic = load();
    try {
      const started = performance.now();
      await api("POST", "/v1/releases", { name: `failing-${process.pid}`, group: "mock", lane: "canary", steps: [{ setWeight: 50 }, { analysis: {} }, { setWeight: 100 }], analysis });
      const r = await until(`failing-${process.pid}`, (x) => x.status !== "progressing");
      const took = performance.now() - started;
      console.log(`e2e-envoy: 30% failing canary rolled back after ${(took / 1000).toFixed(2)} s (interval ${INTERVAL_MS} ms): ${r.reason}`);
      expect(r.status).toBe("failed");
      expect(r.weight).toBe(0);
      expect(r.analysisRun!.intervals.map((i) => i.verdict)).toEqual(["fail", "fail"]);
      expect(r.reason).toMatch(/error rate (2\d|3\d)(\.\d+)?% > max 5%/);
      expect(took).toBeLessThan(2 * INTERVAL_MS + 2000); // two intervals, plus report and push time
    } finally {
      await traffic.stop();
      stack.setFailRate("mocka", "v2", 0);
    }
    await stack.waitAllAcked();
    for (let i = 0; i < 10; i++) expect(await get({ "x-user-id": `after-${i}` })).toBe(V1);
  }, 60_000);

  it("a healthy canary passes analysis and reaches 100%; finish empties the lane", async () => {
    await apply(demoGroup.lanes);
    const traffic = load();
    let r: Rel;
    try {
      await api("POST", "/v1/releases", { name: `healthy-${process.pid}`, group: "mock", lane: "canary", steps: [{ setWeight: 50 }, { analysis: {} }, { setWeight: 100 }], analysis });
      r = await until(`healthy-${process.pid}`, (x) => x.status !== "progressing");
    } finally {
      await traffic.stop();
    }
    expect(r).toMatchObject({ status: "promoted", weight: 100 });
    expect(r.analysisRun!.successes).toBe(2);
    expect(traffic.codes.get(500) ?? 0).toBe(0);
    await stack.waitAllAcked();
    for (let i = 0; i < 10; i++) expect(await get({ "x-user-id": `promoted-${i}` })).toBe(A2);
    expect(await api("POST", `/v1/releases/healthy-${process.pid}/finish`)).toMatchObject({ status: "finished", weight: 0 });
    await stack.waitAllAcked();
    for (let i = 0; i < 10; i++) expect(await get({ "x-user-id": `finished-${i}` })).toBe(V1);
  }, 60_000);
});
