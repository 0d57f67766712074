// The graylane CLI end to end against a running server: in-process (main with argv) for every
// command, and as a real process through bin/graylane.mjs (serve, apply, get, stop).
import { create } from "@bufbuild/protobuf";
import { RuleRequestSchema, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { main } from "../../control-plane/src/cli/main.js";
import { mockGroup } from "../support/filter.js";
import { shopGroup } from "../support/lanes.js";
import { TestServer } from "../support/api.js";

let t: TestServer;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (s) => { out += s; },
    err: (s) => { err += s; },
    env: { GRAYLANE_SERVER: t.url, GRAYLANE_ACTOR: "cli-test" },
    stdin: () => JSON.stringify({ name: "stdin-group", services: [{ name: "from-stdin" }] }),
  });
  return { code, out, err };
}

/** A port nothing listens on (just released by the kernel). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function file(name: string, text: string): string {
  const path = join(t.dir, name);
  writeFileSync(path, text);
  return path;
}

beforeAll(async () => {
  t = await TestServer.start();
});
afterAll(async () => {
  await t.stop();
});

describe("graylane CLI against a running server", () => {
  it("apply -f: YAML list creates, JSON single updates, stdin works", async () => {
    const yamlFile = file("groups.yaml", toYaml([mockGroup(), shopGroup()]));
    expect(await run("apply", "-f", yamlFile)).toEqual({
      code: 0, err: "", out: "lanegroup/mock created (revision 1)\nlanegroup/shop created (revision 2)\n",
    });
    const jsonFile = file("mock.json", JSON.stringify(mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 10, match: [{ headers: { grayrelease: { exact: "version2" } } }] }] })));
    expect(await run("apply", "-f", jsonFile)).toMatchObject({ code: 0, out: "lanegroup/mock updated (revision 3)\n" });
    expect(await run("apply", "-f", "-")).toMatchObject({ code: 0, out: "lanegroup/stdin-group created (revision 4)\n" });
    const multi = file("multi.yaml", `${toYaml({ name: "doc-a", services: [{ name: "svc-doc-a" }] })}---\n${toYaml({ name: "doc-b", services: [{ name: "svc-doc-b" }] })}`);
    expect((await run("apply", "-f", multi)).out).toBe("lanegroup/doc-a created (revision 5)\nlanegroup/doc-b created (revision 6)\n");
    expect((await run("-o", "json", "apply", "-f", multi)).out).toMatch(/"created": false/); // revisions 7, 8
  });

  it("get lanegroups: a table by default, -o json and -o yaml, and what they print applies back", async () => {
    const all = await run("get", "lanegroups");
    expect(all.code).toBe(0);
    const lines = all.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME\s+REVISION\s+SERVICES\s+BASE\s+LANES$/);
    expect(lines).toContainEqual(expect.stringMatching(/^mock\s+3\s+mocka,mockb,mockc\s+base\s+canary\(10%,rules\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^shop\s+2\s+web,api,db\s+base\s+gray\(rules\) canary\(10%\) dev\(rules\)$/));

    const one = await run("get", "lanegroups", "mock", "-o", "json");
    const body = JSON.parse(one.out);
    expect(body).toMatchObject({ revision: 3, lanegroup: { name: "mock", lanes: [{ name: "canary", weight: 10 }] } });
    expect((await run("get", "lg", "mock")).out).toMatch(/^NAME.*\nmock\s+3\s/);
    const yaml = await run("-o", "yaml", "get", "lanegroups");
    expect(parseYaml(yaml.out).lanegroups).toHaveLength(5);

    // round trip: edit what `get -o yaml` printed, apply it back
    const doc = parseYaml((await run("get", "lanegroup", "mock", "-o", "yaml")).out);
    doc.lanegroup.lanes[0].weight = 25;
    expect((await run("apply", "-f", file("edited.yaml", toYaml(doc)))).out).toBe("lanegroup/mock updated (revision 9)\n");
    expect(JSON.parse((await run("get", "lanegroups", "-o", "json")).out).lanegroups.find((x: any) => x.lanegroup.name === "mock").lanegroup.lanes[0].weight).toBe(25);
  });

  it("refusals print every path and message on stderr and exit 1, changing nothing", async () => {
    const before = (await run("revisions", "-o", "json")).out;
    const bad = file("bad.yaml", toYaml([{ name: "bad", services: [{ name: "b1" }], lanes: [{ name: "c", weight: 150, services: ["zz"] }] }, { name: "Worse", services: [{ name: "b2" }] }]));
    const r = await run("apply", "-f", bad);
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    expect(r.err).toMatch(/^error: lanegroup\/bad: \/lanes\/0\/weight: .*100/m);
    expect(r.err).toMatch(/^error: lanegroup\/Worse: \/name: .*lowercase/m);
    expect((await run("revisions", "-o", "json")).out).toBe(before);

    const missing = await run("get", "lanegroups", "ghost");
    expect(missing).toMatchObject({ code: 1, out: "", err: "error: lane group ghost does not exist\n" });
    expect((await run("delete", "ghost")).code).toBe(1);
    const noName = await run("apply", "-f", file("noname.json", JSON.stringify({ services: [{ name: "x" }] })));
    expect(noName.code).toBe(1);
    expect(noName.err).toMatch(/\/name: a lane group needs a name/);
    const window = await run("traffic", "--group", "mock", "--window", "soon");
    expect(window.code).toBe(1);
    expect(window.err).toMatch(/^error: \/window: invalid duration/);
  });

  it("revisions, one revision's diff, and rollback", async () => {
    const list = await run("revisions");
    expect(list.code).toBe(0);
    const lines = list.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^REVISION\s+TIME\s+ACTOR\s+OP\s+GROUPS$/);
    expect(lines[1]).toMatch(/^9\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+cli-test\s+replace\s+mock$/);
    expect(lines.at(-1)).toMatch(/^1\s+\S+\s+cli-test\s+create\s+mock$/);
    expect((await run("revisions", "--group", "shop")).out.trimEnd().split("\n")).toHaveLength(2);

    const detail = await run("revisions", "9");
    expect(detail.out).toMatch(/^revision 9 {2}\S+ {2}cli-test {2}replace\n {2}replace lanegroup\/mock\n {4}replace \/lanes\/0\/weight: 10 -> 25\n$/);
    expect(JSON.parse((await run("revisions", "9", "-o", "json")).out).diff[0].patch[0]).toMatchObject({ op: "replace", path: "/lanes/0/weight" });

    const rb = await run("rollback", "1");
    expect(rb).toMatchObject({ code: 0, out: "rolled back to revision 1: new revision 10 (changed: doc-a, doc-b, mock, shop, stdin-group)\n" });
    expect(JSON.parse((await run("get", "lanegroups", "-o", "json")).out).lanegroups.map((x: any) => x.lanegroup.name)).toEqual(["mock"]);
    expect((await run("revisions")).out).toMatch(/^10\s+\S+\s+cli-test\s+rollback to 1\s+doc-a,doc-b,mock,shop,stdin-group$/m);
    expect((await run("rollback", "99")).code).toBe(1);
  });

  it("preview through the real filter, status, traffic, delete", async () => {
    const p = await run("preview", "--group", "mock", "--service", "mocka", "-H", "x-asm-prefer-tag: canary", "--path", "/mock/x");
    expect(p).toEqual({ code: 0, err: "", out: "LANE    ROUTE   SOURCE\ncanary  canary  override\n" });
    const rule = await run("preview", "--group", "mock", "--service", "mockb", "-H", "grayrelease: version2", "-o", "json");
    expect(JSON.parse(rule.out)).toMatchObject({ lane: "canary", route: "base", source: "rule" });
    const outsider = await run("preview", "--group", "mock", "--service", "mocka", "-H", "x-graylane-lane: canary", "--method", "POST");
    expect(outsider.out).toMatch(/^base\s+base\s+base$/m);

    const version = t.server.grpc.status().version; // the content hash of what the rule push serves
    expect(version).toMatch(/^[0-9a-f]{16}$/);
    const status = await run("status");
    expect(status).toMatchObject({ code: 0, out: `serving version ${version} (revision 10)\nno subscribers\n` });
    expect(JSON.parse((await run("status", "-o", "json")).out)).toMatchObject({ version, revision: 10, nodes: [], summary: { connected: 0 } });
    // The traffic ingestion lists every lane of the group's services, counted or not.
    expect((await run("traffic", "--group", "mock", "--window", "5m")).out).toBe([
      "lane group mock, last 5m",
      "SERVICE  LANE    REQUESTS  OBSERVED  CONFIGURED  ERRORS  P50  P99",
      "mocka    base    0         0%        100%        0%      -    -",
      "mocka    canary  0         0%        0%          0%      -    -",
      "mockb    base    0         0%        100%        0%      -    -",
      "mockb    canary  0         0%        0%          0%      -    -",
      "mockc    base    0         0%        100%        0%      -    -",
      "mockc    canary  0         0%        0%          0%      -    -",
      "",
    ].join("\n"));
    expect((await run("traffic", "--group", "nope", "--window", "5m")).out).toBe("lane group nope, last 5m\nno inbound traffic\n");
    // gRPC traffic adds the GRPC column: status counts, most first.
    const counter = (grpcStatus: number, statusClass: number, requests: number) => ({
      group: "mock", lane: "canary", route: "canary", service: "mocka", direction: 1, source: 6, statusClass, grpcStatus,
      requests: BigInt(requests), latencyBuckets: [BigInt(requests)], latencySumUs: 0n,
    });
    t.server.traffic.report(create(TrafficReportSchema, { instanceId: "cli-grpc", sequence: 1n, latencyBoundsMs: [1], counters: [counter(0, 2, 7), counter(14, 5, 3)] }));
    expect((await run("traffic", "--group", "mock", "--window", "5m")).out.split("\n").slice(1, 4)).toEqual([
      "SERVICE  LANE    REQUESTS  OBSERVED  CONFIGURED  ERRORS  P50    P99  GRPC",
      "mocka    base    0         0%        100%        0%      -      -    -",
      "mocka    canary  10        100%      0%          30%     0.5ms  1ms  OK 7 UNAVAILABLE 3",
    ]);

    expect(await run("delete", "mock")).toMatchObject({ code: 0, out: "lanegroup/mock deleted (revision 11)\n" });
    expect((await run("get", "lanegroups")).out).toBe("no lane groups\n");
  });

  it("usage and connection problems exit 2", async () => {
    for (const argv of [
      ["bogus"],
      ["get", "widgets"],
      ["preview", "--service", "x"],
      ["preview", "--group", "g", "--service", "s", "-H", "no-colon"],
      ["rollback", "abc"],
      ["apply"],
      ["apply", "-f", join(t.dir, "does-not-exist.yaml")],
      ["apply", "-f", file("broken.yaml", "name: [unclosed")],
      ["-o", "xml", "get", "lanegroups"],
      ["serve", "--port", "70000"],
    ]) {
      const r = await run(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err, argv.join(" ")).toMatch(/error/i);
    }
    const port = await closedPort();
    const down = await run("--server", `http://127.0.0.1:${port}`, "get", "lanegroups");
    expect(down.code).toBe(2);
    expect(down.err).toBe(`error: cannot reach the control plane at http://127.0.0.1:${port}: ECONNREFUSED\n`);
    expect((await run("--help")).code).toBe(0);
    expect((await run("--version")).out).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("bin/graylane.mjs as a process", () => {
  function exec(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, ["bin/graylane.mjs", ...args], { env: { ...process.env, GRAYLANE_ACTOR: "proc" } });
      let out = "";
      let err = "";
      p.stdout.on("data", (d) => (out += d));
      p.stderr.on("data", (d) => (err += d));
      p.on("close", (code) => resolve({ code, out, err }));
    });
  }

  it("serve, then apply and get through separate processes, then stop on SIGTERM", async () => {
    const db = join(t.dir, "serve.db");
    const server = spawn(process.execPath, ["bin/graylane.mjs", "serve", "--port", "0", "--grpc-port", "0", "--store", `sqlite:${db}`]);
    let out = "";
    const exited = new Promise<number | null>((resolve) => server.on("close", resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        server.stdout.on("data", (d) => {
          out += d;
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        server.on("close", () => reject(new Error("serve exited: " + out)));
      });
      const groups = file("proc.yaml", toYaml(mockGroup()));
      expect(await exec(["--server", url, "apply", "-f", groups])).toEqual({ code: 0, out: "lanegroup/mock created (revision 1)\n", err: "" });
      const got = await exec(["--server", url, "get", "lanegroups", "-o", "json"]);
      expect(got.code).toBe(0);
      expect(JSON.parse(got.out).lanegroups[0]).toMatchObject({ revision: 1, lanegroup: { name: "mock" } });
      const refused = await exec(["--server", url, "delete", "ghost"]);
      expect(refused).toMatchObject({ code: 1, err: "error: lane group ghost does not exist\n" });
      // the same process pushes the rules over gRPC
      const grpcPort = Number(/gRPC rule push and traffic on [\d.]+:(\d+)/.exec(out)![1]);
      const client = new GraylaneClient(`127.0.0.1:${grpcPort}`);
      const stream = client.streamRules();
      const first = new Promise<RuleResponse>((resolve, reject) => { stream.once("data", resolve); stream.once("error", reject); });
      stream.write(create(RuleRequestSchema, { node: { id: "cli-node" }, instanceId: "cli-node/1" }));
      const pushed = await first;
      expect(pushed.ruleSet?.groups.map((g) => g.name)).toEqual(["mock"]);
      stream.write(create(RuleRequestSchema, { instanceId: "cli-node/1", versionInfo: pushed.version, responseNonce: pushed.nonce }));
      await new Promise((r) => setTimeout(r, 100));
      const status = await exec(["--server", url, "status", "-o", "json"]);
      expect(JSON.stringify(JSON.parse(status.out))).toContain("cli-node");
      // In a table: the subscribers in numbers, then the node.
      const text = await exec(["--server", url, "status"]);
      expect(text.out).toContain("subscribers: 1 connected, 1 at this version, 0 pending, 0 NACKed\n");
      expect(text.out).toContain("cli-node/1");
      stream.end();
      client.close();
    } finally {
      server.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/graylane: stopped\n$/);
  });
});
