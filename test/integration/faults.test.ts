// Faults: `kill -9` of a control plane in the middle of a stream of writes (no acknowledged revision
// lost, the store opens cleanly), and filters that lose the control plane (keep routing, then resume
// reporting with exact totals). A subscriber that never reads is in xds.test.ts.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { SqliteStore } from "../../control-plane/src/store/index.js";
import { TrafficIngest } from "../../control-plane/src/traffic/index.js";
import { RealClock } from "../../control-plane/src/wasmhost/clock.js";
import { grpcBridge } from "../../control-plane/src/wasmhost/index.js";
import { startGrpcServer } from "../../control-plane/src/xds/index.js";
import { freePorts } from "../../demo/stack.js";
import { mockGroup, newFilter, routeTo } from "../support/filter.js";
import { MemoryRuleSource } from "../support/rulesource.js";

const cleanups: Array<() => unknown> = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "graylane-faults-"));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function until<T>(what: string, f: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("kill -9 of the control plane during writes", () => {
  it("loses no acknowledged revision, and the store opens cleanly and serves them", async () => {
    const db = join(tempDir(), "graylane.db");
    const server = spawn(process.execPath, ["bin/graylane.mjs", "serve", "--port", "0", "--grpc-port", "0", "--store", `sqlite:${db}`], { stdio: ["ignore", "pipe", "pipe"] });
    cleanups.push(() => { if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL"); });
    let out = "";
    let err = "";
    server.stderr!.on("data", (d) => { err = (err + d).slice(-4000); }); // read it, or a full pipe blocks the server
    const url = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`serve did not listen within 45 s: ${out}${err}`)), 45_000);
      server.stdout!.on("data", (d) => { out += d; const m = /listening on (http:\/\/\S+)/.exec(out); if (m) { clearTimeout(t); resolve(m[1]!); } });
      server.on("close", () => { clearTimeout(t); reject(new Error("serve exited: " + out + err)); });
    });
    // 4 writers PUT distinct groups as fast as they can; each 2xx is an acknowledged revision.
    const acked = new Map<number, { name: string; weight: number }>();
    let killed = false;
    let seq = 0;
    const writer = async () => {
      while (!killed) {
        const i = seq++;
        const name = `g${i % 20}`;
        const weight = i % 100;
        try {
          const res = await fetch(`${url}/v1/lanegroups/${name}`, {
            method: "PUT", headers: { "content-type": "application/json" }, signal: AbortSignal.timeout(5000),
            body: JSON.stringify({ name, services: [{ name: `svc-${name}` }], lanes: [{ name: "canary", weight }] }),
          });
          const body = (await res.json()) as { revision: number };
          if (res.ok) acked.set(body.revision, { name, weight });
        } catch { /* the process is gone */ }
      }
    };
    const writers = Promise.all([writer(), writer(), writer(), writer()]);
    try {
      await until("100 acknowledged writes", () => acked.size >= 100, 30_000);
    } finally {
      server.kill("SIGKILL");
      killed = true;
    }
    await writers;
    // Killed by a signal, exitCode stays null and signalCode is set; 'close' may have fired already.
    await new Promise((r) => (server.exitCode !== null || server.signalCode !== null ? r(null) : server.once("exit", r)));

    const store = new SqliteStore(db); // opens: WAL recovered, schema checked
    try {
      expect((store.database.pragma("integrity_check") as Array<{ integrity_check: string }>)[0]!.integrity_check).toBe("ok");
      for (const [rev, want] of acked) {
        const r = store.revision(rev);
        expect(r, `revision ${rev}`).toBeDefined();
        expect(r!.group).toBe(want.name);
        expect(r!.lanegroups.find((g) => g.name === want.name)!.lanes[0]!.weight).toBe(want.weight);
      }
      const latest = store.current().revision;
      expect(latest).toBeGreaterThanOrEqual(Math.max(...acked.keys()));
      expect(store.revisions({ limit: 1000 }).length).toBe(latest); // gapless log
      console.log(`faults: kill -9 after ${acked.size} acknowledged writes; store at revision ${latest}, every acknowledged one present`);
    } finally {
      store.close();
    }
  }, 120_000);
});

describe("filters without their control plane", () => {
  it("keep routing, then resume reporting with exact totals when it is back", async () => {
    const dir = tempDir();
    const [port] = await freePorts(1);
    const rules = new MemoryRuleSource([mockGroup()]);
    const open = async () => {
      const db = new Database(join(dir, "traffic.db"));
      const traffic = new TrafficIngest({ db, rules });
      const server = await startGrpcServer({ port, rules, traffic });
      return { db, traffic, server, close: async () => { await server.close(); db.close(); } };
    };
    let cp = await open();
    cleanups.push(() => cp.close());
    const bridge = grpcBridge({ cp: `127.0.0.1:${port}` });
    cleanups.push(() => bridge.close());
    const f = await newFilter({ clock: new RealClock() as never, grpc: bridge, direction: "inbound", service: "mocka",
      config: { cluster: "cp", node: { id: "mocka-1" }, service: "mocka", direction: "inbound", reportIntervalMs: 100 } });
    f.vm.tick();
    await until("ACK", () => cp.server.status().nodes.some((n) => n.nodeId === "mocka-1" && n.version));
    const send = (n: number, lane?: string) => { for (let i = 0; i < n; i++) f.exchange(lane ? { "x-asm-prefer-tag": lane } : {}, 200, routeTo("mocka")); };
    const counted = (t: TrafficIngest) => t.totals("mock").filter((x) => x.service === "mocka").reduce((m, x) => m.set(x.lane, (m.get(x.lane) ?? 0) + x.requests), new Map<string, number>());

    send(30);
    send(20, "canary");
    const tick = setInterval(() => f.vm.tick(), 20);
    cleanups.push(() => clearInterval(tick));
    await until("first report", () => counted(cp.traffic).get("base") === 30 && counted(cp.traffic).get("canary") === 20);

    await cp.close();
    send(70);
    send(10, "canary"); // routed on the last good RuleSet while the control plane is away
    expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).lane).toBe("canary");
    await new Promise((r) => setTimeout(r, 300)); // reports fail meanwhile
    cp = await open(); // same port, same database: the last values per instance are remembered
    const total = await until("exact totals after the restart", () => {
      const c = counted(cp.traffic);
      return c.get("base") === 100 && c.get("canary") === 31 && c;
    }, 40_000);
    expect(Object.fromEntries(total)).toEqual({ base: 100, canary: 31 });
    expect(f.vm.failed).toBe(false);
  }, 60_000);
});
