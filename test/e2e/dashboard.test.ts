// The dashboard at `/` in a real browser (Debian chromium driven by playwright-core) against a real
// control plane: REST, gRPC rule push with two fake proxies (one ACKs, one NACKs), traffic reports
// over gRPC, and the release engine. Checks what an operator sees and that the buttons act through
// the API. Saves a screenshot to .cache/dashboard.png.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { chromium, type Browser, type Page } from "playwright-core";
import { RuleRequestSchema, type RuleRequest, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { DecisionSource, Direction, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { startControlPlane, type ControlPlane } from "../../control-plane/src/server/index.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const SCREENSHOT = ".cache/dashboard.png";
const GROUP = JSON.parse(readFileSync("demo/lanegroup.json", "utf8")) as Record<string, any>;
const NACK_ERROR = "required feature <x-test> is not supported"; // has markup: must show as text
const RELEASE = "mock-canary";
const BOB = "bob <img src=x onerror=alert(1)>"; // an actor is free text: shown as text, never markup
const UI = { timeout: 15_000 }; // the page polls every 2 s

let server: ControlPlane;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];
const clients: GraylaneClient[] = [];
const streams: Array<ClientDuplexStream<RuleRequest, RuleResponse>> = [];
let reporter: NodeJS.Timeout | undefined;

/** A fake proxy: ACKs every RuleSet, or (nack) ACKs the first and NACKs every later one. */
function subscribe(nodeId: string, instanceId: string, nack = false): void {
  const client = new GraylaneClient(`127.0.0.1:${server.grpcPort}`, { "grpc.use_local_subchannel_pool": 1 });
  const stream = client.streamRules();
  let received = 0;
  stream.on("data", (r: RuleResponse) => {
    received++;
    const refuse = nack && received > 1;
    stream.write(create(RuleRequestSchema, refuse
      ? { instanceId, responseNonce: r.nonce, errorDetail: NACK_ERROR }
      : { instanceId, versionInfo: r.version, responseNonce: r.nonce }));
  });
  stream.on("error", () => {});
  stream.write(create(RuleRequestSchema, { node: { id: nodeId }, instanceId }));
  clients.push(client);
  streams.push(stream);
}

/** Cumulative traffic counters of one sidecar and the gateway, reported every 500 ms over gRPC. */
function startTraffic(): void {
  const client = new GraylaneClient(`127.0.0.1:${server.grpcPort}`);
  clients.push(client);
  const bounds = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];
  let seq = 0;
  let ticks = 0;
  const counter = (lane: string, service: string, direction: Direction, statusClass: number, requests: number, bucket: number) => {
    const buckets = new Array<bigint>(bounds.length + 1).fill(0n);
    buckets[bucket] = BigInt(requests);
    return {
      group: "mock", lane, route: lane, service, direction, statusClass,
      source: lane === "base" ? DecisionSource.BASE : DecisionSource.WEIGHT,
      requests: BigInt(requests), latencyBuckets: buckets, latencySumUs: BigInt(requests * 4000),
    };
  };
  const send = () => {
    ticks++;
    const report = create(TrafficReportSchema, {
      instanceId: "mocka-sidecar/1", nodeId: "mocka-sidecar", sequence: BigInt(++seq), latencyBoundsMs: bounds,
      counters: [
        counter("base", "mocka", Direction.INBOUND, 2, 18 * ticks, 3),
        counter("canary", "mocka", Direction.INBOUND, 2, 2 * ticks - Math.floor(ticks / 2), 5),
        counter("canary", "mocka", Direction.INBOUND, 5, Math.floor(ticks / 2), 8),
        counter("base", "mockb", Direction.INBOUND, 2, 20 * ticks, 2),
        { ...counter("base", "mockb", Direction.INBOUND, 5, ticks, 2), grpcStatus: 14 }, // gRPC UNAVAILABLE
        counter("base", "mocka", Direction.EDGE, 2, 18 * ticks, 0),
        counter("canary", "mocka", Direction.EDGE, 2, 2 * ticks, 0),
      ],
    });
    client.report(report).catch(() => {});
  };
  send();
  reporter = setInterval(send, 500);
}

async function call(method: string, path: string, body?: unknown, actor = "dashboard-test"): Promise<{ status: number; body: any }> {
  const res = await fetch(server.url + path, {
    method,
    headers: { "content-type": "application/json", "x-graylane-actor": actor },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const testid = (id: string) => `[data-testid="${id}"]`;
const attr = (selector: string, name: string) => () => page.locator(selector).first().getAttribute(name, { timeout: 1000 }).catch(() => null);
const text = (selector: string) => () => page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);

// Without a browser every test fails (counted as failures, not skipped) with this message.
let missingBrowser: Error | undefined;
beforeEach(() => {
  if (missingBrowser) throw missingBrowser;
});

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    missingBrowser = new Error(`dashboard test: no Chromium at ${CHROMIUM}. Install it (make test installs Debian's chromium) or set CHROMIUM_BIN to a Chromium/Chrome binary.`);
    return;
  }
  server = await startControlPlane({ port: 0, grpcPort: 0, store: ":memory:" });
  subscribe("gateway", "gateway/0");
  subscribe("gateway", "gateway/1");
  subscribe("mockc-v2-sidecar", "mockc-v2-sidecar/0", true);
  startTraffic();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], headless: true });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (/Content Security Policy|Uncaught/i.test(m.text())) pageErrors.push(`console: ${m.text()}`); });
  page.on("dialog", (d) => {
    if (d.type() !== "confirm") pageErrors.push(`unexpected ${d.type()} dialog: ${d.message()}`);
    void d.accept();
  });
}, 60_000);

afterAll(async () => {
  if (reporter) clearInterval(reporter);
  await browser?.close();
  for (const s of streams) s.cancel();
  for (const c of clients) c.close();
  await server?.close();
});

describe("dashboard in a real browser", () => {
  it("serves the page and its assets with a same-origin CSP, outside /openapi.json", async () => {
    const res = await fetch(server.url + "/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("content-security-policy")).toMatch(/default-src 'self'/);
    const body = await res.text();
    expect(body).toContain('src="/dashboard/app.js"');
    expect(body).not.toMatch(/https?:\/\//); // nothing fetched from elsewhere
    const js = await fetch(server.url + "/dashboard/app.js");
    expect([js.status, js.headers.get("content-type")]).toEqual([200, "text/javascript; charset=utf-8"]);
    expect((await fetch(server.url + "/dashboard/style.css")).headers.get("content-type")).toMatch(/^text\/css/);
    expect((await fetch(server.url + "/dashboard/nothing.js")).status).toBe(404);
    expect((await fetch(server.url + "/dashboard/../package.json")).status).toBe(404);
    const doc = (await call("GET", "/openapi.json")).body;
    expect(Object.keys(doc.paths).filter((p) => p === "/" || p.startsWith("/dashboard"))).toEqual([]);
  });

  it("shows the lane group, its lanes, traffic charts and the filter sync status", async () => {
    expect((await call("PUT", "/v1/lanegroups/mock", GROUP, "alice")).status).toBe(201);
    await page.goto(server.url + "/");

    // Lane group and lanes (base gets what weights leave).
    await page.locator(testid("group-mock")).waitFor(UI);
    expect(await page.locator(testid("group-mock")).textContent()).toMatch(/mocka.*mockb.*mockc/s);
    await expect.poll(attr(testid("lane-mock-base"), "data-weight"), UI).toBe("100");
    expect(await page.locator(testid("lane-mock-canary")).getAttribute("data-weight")).toBe("0");
    expect(await page.locator(testid("lane-mock-canary")).textContent()).toContain('header grayrelease = "version2"');

    // Traffic: points accumulate client side, observed vs configured, error rate and p99.
    await expect.poll(async () => Number(await attr(`${testid("chart-mock-canary")} [data-series="observed-mocka"]`, "data-points")()), UI).toBeGreaterThanOrEqual(2);
    expect(await page.locator(`${testid("chart-mock-canary")} [data-series="configured"]`).count()).toBe(1);
    expect(await page.locator(`${testid("chart-mock-base")} [data-series="observed-mockb"]`).count()).toBe(1);
    expect(await page.locator(`${testid("chart-mock-canary")} [data-series="observed-edge"]`).count()).toBe(1);
    const row = page.locator(testid("traffic-row-mock-canary-mocka"));
    // service, requests, observed, configured (weight 0: rules only), errors (~25% 5xx), p50, p99
    await expect.poll(() => row.locator("td").allTextContents(), UI).toEqual([
      "mocka", expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+(\.\d)?%$/), "0%", expect.stringMatching(/^\d+(\.\d+)?%$/),
      expect.stringMatching(/^\d+(\.\d)? ms$/), expect.stringMatching(/^\d+ ms$/),
    ]);
    expect(await row.locator("td.bad").count()).toBe(1);
    // gRPC statuses: a column in the base lane, which has gRPC traffic (mockb), none in canary.
    await expect.poll(text(testid("grpc-mock-base-mockb")), UI).toMatch(/^UNAVAILABLE \d+$/);
    expect(await page.locator(testid("grpc-mock-base-mocka")).textContent()).toBe("–");
    expect(await page.locator(`${testid("lane-traffic-mock-canary")} th`).allTextContents()).not.toContain("gRPC");

    // Filter sync: the gateway's two subscribers ACKed the served version; the other node NACKed it.
    const served = await call("GET", "/v1/status");
    await expect.poll(attr(testid("node-gateway"), "data-version"), UI).toBe(served.body.version);
    expect(await page.locator(`${testid("node-gateway")} .badge`).textContent()).toBe("in sync");
    const bad = page.locator(testid("node-mockc-v2-sidecar"));
    await bad.locator(testid("nack")).waitFor(UI);
    expect(await bad.locator(".badge").textContent()).toBe("behind");
    expect(await bad.locator(testid("nack")).textContent()).toContain(NACK_ERROR);
    expect(await bad.locator(testid("nack")).evaluate((e) => getComputedStyle(e).color)).toBe("rgb(197, 48, 48)");
    expect(await page.locator(testid("status-summary")).textContent()).toMatch(/1\s+of 2 nodes/);
  });

  it("lists revisions with their actor, shows a diff, and rolls back after confirming", async () => {
    const changed = { ...GROUP, lanes: [{ ...GROUP.lanes[0], match: [{ queryParams: { beta: { exact: "1" } } }] }] };
    expect((await call("PUT", "/v1/lanegroups/mock", changed, BOB)).status).toBe(200);

    const r1 = page.locator(testid("revision-1"));
    await r1.waitFor(UI);
    expect(await r1.locator(".actor").textContent()).toBe("alice");
    expect(await r1.textContent()).toContain("create");
    await page.locator(testid("revision-2")).waitFor(UI);
    expect(await page.locator(`${testid("revision-2")} .actor`).textContent()).toBe(BOB);
    expect(await page.locator(`${testid("revisions")} img`).count()).toBe(0);

    // Revision 2's diff: the match block replaced.
    await page.locator(testid("revision-2")).click();
    const diff = page.locator(`${testid("revision-diff")}[data-revision="2"]`);
    await diff.waitFor(UI);
    expect(await diff.locator(testid("change-mock")).textContent()).toContain("replace");
    expect(await diff.textContent()).toContain("/lanes/0/match/0");
    expect(await diff.locator("li.op.remove").textContent()).toMatch(/\/lanes\/0\/match\/0\/headers\s+was\s+\{\s+"grayrelease"/);
    expect(await diff.locator("li.op.add").textContent()).toMatch(/\/lanes\/0\/match\/0\/queryParams\s+\{\s+"beta"/);

    // Revision 1's diff: the whole group added; roll back to it as "carol".
    await page.locator(testid("revision-1")).click();
    const diff1 = page.locator(`${testid("revision-diff")}[data-revision="1"]`);
    await diff1.waitFor(UI);
    expect(await diff1.textContent()).toContain("(whole group)");
    await page.locator(testid("actor")).fill("carol");
    await page.locator(testid("actor")).dispatchEvent("change");
    await diff1.locator(testid("rollback-button")).click(); // the confirm() dialog is accepted
    await expect.poll(text(testid("rollback-result")), UI).toMatch(/rolled back: revision 3 restores revision 1/);
    const r3 = page.locator(testid("revision-3"));
    await r3.waitFor(UI);
    expect(await r3.locator(".actor").textContent()).toBe("carol");
    expect(await r3.textContent()).toMatch(/rollback\s+to 1/);
    const now = await call("GET", "/v1/lanegroups/mock");
    expect(now.body.revision).toBe(3);
    expect(now.body.lanegroup.lanes[0].match).toEqual(GROUP.lanes[0].match);
  });

  it('shows "releases unavailable" when GET /v1/releases is 404, with the rest of the page alive', async () => {
    const p = await browser!.newPage();
    try {
      await p.route("**/v1/releases", (route) => route.fulfill({ status: 404, contentType: "application/json", body: '{"errors":[{"path":"","message":"no route GET /v1/releases"}]}' }));
      await p.goto(server.url + "/");
      await p.locator(testid("releases-unavailable")).waitFor(UI);
      await p.locator(testid("group-mock")).waitFor(UI);
      await p.locator(testid("revision-3")).waitFor(UI);
    } finally {
      await p.close();
    }
  });

  it("shows a release paused for approval, approves it from the page, and it reaches weight 50", async () => {
    const list = await call("GET", "/v1/releases");
    if (list.status === 404) {
      throw new Error("GET /v1/releases answers 404: the release engine (control-plane/src/rollout) is not mounted in this control plane");
    }
    const steps = [{ setWeight: 10 }, { pause: {} }, { setWeight: 50 }, { pause: {} }];
    const created = await call("POST", "/v1/releases", { name: RELEASE, group: "mock", lane: "canary", steps });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.release).toMatchObject({ name: RELEASE, group: "mock", lane: "canary" });

    const card = `${testid(`release-${RELEASE}`)}`;
    await expect.poll(attr(card, "data-status"), UI).toBe("paused");
    await expect.poll(attr(card, "data-step"), UI).toBe("1");
    expect(await page.locator(card).getAttribute("data-weight")).toBe("10");
    expect(await page.locator(`${card} ${testid("release-pause-reason")}`).textContent()).toContain("awaiting approval");
    expect(await page.locator(`${card} ${testid("release-step-1")}`).getAttribute("class")).toBe("current");
    expect(await page.locator(`${card} ${testid("release-step-0")}`).getAttribute("class")).toBe("done");
    expect(await page.locator(`${card} ${testid("release-step-2")}`).textContent()).toBe("set weight 50%");
    await expect.poll(attr(testid("lane-mock-canary"), "data-weight"), UI).toBe("10");
    expect(await page.locator(testid("lane-mock-base")).getAttribute("data-weight")).toBe("90");
    const button = (op: string) => page.locator(`${card} ${testid(`release-${op}`)}`);
    const enabled = async () => {
      const out: string[] = [];
      for (const op of ["approve", "pause", "resume", "promote", "finish", "abort", "undo"]) if (await button(op).isEnabled()) out.push(op);
      return out;
    };
    expect(await enabled()).toEqual(["approve", "pause", "promote", "abort"]);

    // Pause by hand, then resume: back to waiting for approval.
    await button("pause").click();
    await expect.poll(text(`${card} ${testid("release-pause-reason")}`), UI).toContain("paused by hand");
    expect(await enabled()).toEqual(["resume", "promote", "abort"]);
    await button("resume").click();
    await expect.poll(text(`${card} ${testid("release-pause-reason")}`), UI).toContain("awaiting approval");
    expect(await page.locator(card).getAttribute("data-step")).toBe("1");

    await button("approve").click();

    await expect.poll(attr(card, "data-weight"), UI).toBe("50");
    await expect.poll(attr(card, "data-step"), UI).toBe("3");
    expect(await page.locator(`${card} ${testid("release-step-3")}`).getAttribute("class")).toBe("current");
    expect(await page.locator(`${card} ${testid("release-error")}`).count()).toBe(0);
    await expect.poll(attr(testid("lane-mock-canary"), "data-weight"), UI).toBe("50");
    expect(await page.locator(testid("lane-mock-base")).getAttribute("data-weight")).toBe("50");
    const after = await call("GET", `/v1/releases/${RELEASE}`);
    expect(after.status).toBe(200);
    const release = after.body.release ?? after.body;
    expect(release).toMatchObject({ name: RELEASE, weight: 50, currentStep: 3, status: "paused" });
  });

  it("shows the configured shares and enables the release buttons the API serves, not its own idea of them", async () => {
    // The real answers, with configuredShares and allowedOperations replaced by ones that no
    // weight or status would give: what the page shows can only come from those fields.
    const groups = (await call("GET", "/v1/lanegroups")).body;
    groups.lanegroups[0].configuredShares = { base: 0.25, canary: 0.75 };
    const releases = (await call("GET", "/v1/releases")).body;
    const release = releases.releases.find((r: { name: string }) => r.name === RELEASE);
    expect(release).toMatchObject({ status: "paused", allowedOperations: ["approve", "pause", "abort", "promote"] });
    release.allowedOperations = ["finish", "undo"];
    const p = await browser!.newPage();
    try {
      await p.route("**/v1/lanegroups", (route) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(groups) }));
      await p.route("**/v1/releases", (route) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(releases) }));
      await p.goto(server.url + "/");
      const card = testid(`release-${RELEASE}`);
      await p.locator(card).waitFor(UI);
      expect(await p.locator(card).getAttribute("data-status")).toBe("paused");
      const enabled: string[] = [];
      for (const op of ["approve", "pause", "resume", "promote", "finish", "abort", "undo"]) if (await p.locator(`${card} ${testid(`release-${op}`)}`).isEnabled()) enabled.push(op);
      expect(enabled).toEqual(["finish", "undo"]);
      await p.locator(testid("lane-mock-canary")).waitFor(UI);
      expect(await p.locator(testid("lane-mock-canary")).getAttribute("data-weight")).toBe("75");
      expect(await p.locator(testid("lane-mock-base")).getAttribute("data-weight")).toBe("25");
      expect(await p.locator(testid("lane-traffic-mock-canary")).textContent()).toContain("configured 75%");
    } finally {
      await p.close();
    }
  });

  it("saves a screenshot, and the page raised no error", async () => {
    // The gateway has ACKed the release's last revision: the picture shows it in sync.
    const served = (await call("GET", "/v1/status")).body.version;
    await expect.poll(attr(testid("node-gateway"), "data-version"), UI).toBe(served);
    mkdirSync(".cache", { recursive: true });
    rmSync(SCREENSHOT, { force: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = readFileSync(SCREENSHOT);
    expect(png.length).toBeGreaterThan(10_000);
    expect(png.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a");
    expect(pageErrors).toEqual([]);
  });
});
