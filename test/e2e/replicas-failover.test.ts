// Three `graylane serve --store etcd://` processes on one real etcd with 30 subscribers spread over
// them, each with the three replicas as its endpoints (as an Envoy cluster of the control plane's
// Service has): GET /v1/status on any replica shows every replica's subscribers in numbers; a
// change reaches all of them; a replica killed with SIGKILL loses only its own streams, which
// reconnect to the others and get the current version, and drops off the board when its lease
// expires.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { RuleRequestSchema, type RuleRequest, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { freePorts } from "../../demo/stack.js";
import { startEtcd, type RunningEtcd } from "../support/etcd.js";
import { until } from "../support/wait.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
const SUBSCRIBERS = 30;

interface ServeProcess { child: ChildProcess; url: string; grpc: string }

let etcd: RunningEtcd;
const serves: ServeProcess[] = [];

async function serve(): Promise<ServeProcess> {
  const [port, grpcPort] = await freePorts(2);
  const child = spawn(process.execPath, ["bin/graylane.mjs", "serve", "--store", etcd.url, "--port", String(port), "--grpc-port", String(grpcPort)], { stdio: ["ignore", "ignore", "inherit"] });
  const s = { child, url: `http://127.0.0.1:${port}`, grpc: `127.0.0.1:${grpcPort}` };
  serves.push(s);
  await until("replica ready", () => fetch(`${s.url}/readyz`).then((r) => r.ok, () => false));
  return s;
}

/** A filter root context whose cluster lists every replica: on a broken stream it moves to the next. */
class Subscriber {
  at: number;
  connects = 0;
  version = "";
  private client: GraylaneClient | undefined;
  private stream: ClientDuplexStream<RuleRequest, RuleResponse> | undefined;
  private closed = false;

  constructor(readonly id: number, private readonly targets: () => string[]) {
    this.at = id % 3;
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    this.connects++;
    this.client = new GraylaneClient(this.targets()[this.at]!, { "grpc.use_local_subchannel_pool": 1 });
    const stream = (this.stream = this.client.streamRules());
    stream.on("data", (r: RuleResponse) => {
      if (!r.version) return;
      this.version = r.version;
      stream.write(create(RuleRequestSchema, { versionInfo: r.version, responseNonce: r.nonce }));
    });
    const failover = () => {
      if (this.stream !== stream) return;
      this.stream = undefined;
      this.client?.close();
      this.at = (this.at + 1) % 3;
      setTimeout(() => this.connect(), 100);
    };
    stream.on("error", failover);
    stream.on("end", failover);
    stream.write(create(RuleRequestSchema, { node: { id: `node-${this.id}` }, instanceId: `node-${this.id}/0`, versionInfo: this.version }));
  }

  close(): void {
    this.closed = true;
    this.stream?.cancel();
    this.client?.close();
  }
}

const subscribers: Subscriber[] = [];
interface Status { version: string; summary: { connected: number; atVersion: number }; replicas: Array<{ replica: string; connected: number; atVersion: number }> }
const status = async (s: ServeProcess): Promise<Status> => (await fetch(`${s.url}/v1/status`)).json() as Promise<Status>;

beforeAll(async () => { etcd = await startEtcd(); }, 30_000);
afterAll(async () => {
  for (const s of subscribers) s.close();
  for (const s of serves) s.child.kill("SIGKILL");
  await etcd?.stop();
});

describe("replicas on etcd: status from any replica, failover after kill -9", () => {
  it("spreads, pushes to all, and moves only the killed replica's streams", async () => {
    const [a, b, c] = [await serve(), await serve(), await serve()];
    const put = await fetch(`${a.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "alice" }, body: JSON.stringify(demoGroup) });
    expect(put.status).toBeLessThan(300);
    const targets = () => [a.grpc, b.grpc, c.grpc];
    for (let i = 0; i < SUBSCRIBERS; i++) subscribers.push(new Subscriber(i, targets));

    // Every replica's board entry, read from any of them.
    const v1 = (await status(a)).version;
    const all = await until("all at v1 on the board", async () => {
      const st = await status(c);
      return st.summary.atVersion === SUBSCRIBERS && st.replicas.length === 3 ? st : undefined;
    });
    expect(all.replicas.map((r) => r.connected)).toEqual([10, 10, 10]);
    expect(all.version).toBe(v1);

    // A change on one replica reaches the subscribers of all three.
    const change = await fetch(`${b.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "alice" }, body: JSON.stringify({ ...demoGroup, traceHeader: "x-trace-2" }) });
    expect(change.status).toBeLessThan(300);
    const v2 = await until("v2 served", async () => { const st = await status(a); return st.version !== v1 && st.version; });
    await until("every subscriber has v2", () => subscribers.every((s) => s.version === v2));

    // kill -9 b: only its 10 subscribers reconnect (to c or a) and get the current version.
    const onB = subscribers.filter((s) => s.at === 1);
    expect(onB).toHaveLength(10);
    b.child.kill("SIGKILL");
    await until("b's subscribers moved", () => onB.every((s) => s.connects === 2 && s.at !== 1));
    expect(subscribers.filter((s) => !onB.includes(s)).every((s) => s.connects === 1)).toBe(true);
    const after = await until("b off the board, all 30 at v2 on a and c", async () => {
      const st = await status(a);
      return st.replicas.length === 2 && st.summary.connected === SUBSCRIBERS && st.summary.atVersion === SUBSCRIBERS ? st : undefined;
    });
    expect(after.replicas.map((r) => r.connected).sort((x, y) => x - y)).toEqual([10, 20]);

    // And the next change reaches everyone through the two left.
    await fetch(`${c.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "alice" }, body: JSON.stringify({ ...demoGroup, traceHeader: "x-trace-3" }) });
    const v3 = await until("v3 served", async () => { const st = await status(c); return st.version !== v2 && st.version; });
    await until("every subscriber has v3", () => subscribers.every((s) => s.version === v3));
  }, 90_000);
});
