// TLS and subscriber identity: HTTPS for the API, TLS and mTLS for the gRPC services from certificate
// files (made here with openssl), per-node tokens as the alternative to client certificates, the
// namespace scope of an identity (a filter receives only its namespace's lane groups), and a forged
// traffic report refused so it cannot move a release's analysis.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { stringify } from "yaml";
import { newToken, Tokens } from "../../control-plane/src/auth/tokens.js";
import { spiffeNamespace } from "../../control-plane/src/auth/nodes.js";
import { main } from "../../control-plane/src/cli/main.js";
import { RuleRequestSchema, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { DecisionSource, Direction, TrafficReportSchema } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { RealClock } from "../../control-plane/src/wasmhost/clock.js";
import { grpcBridge } from "../../control-plane/src/wasmhost/index.js";
import { parseGrpcService } from "../../control-plane/src/wasmhost/grpc.js";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "../../control-plane/src/server/index.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";
import { makeCa } from "../support/certs.js";
import { mockGroup, newFilter, routeTo } from "../support/filter.js";
import { resolve } from "node:path";
import { gatewayConfig, type Topology } from "../../control-plane/src/mesh/envoy-config.js";
import { envoyBin, startEnvoy, type RunningEnvoy } from "../../control-plane/src/mesh/envoy-process.js";

let dir: string;
const pem = (name: string) => readFileSync(join(dir, name));
/** A CA, a server certificate for 127.0.0.1/localhost, and client certificates with SPIFFE identities. */
function makeCerts(): void {
  const ca = makeCa(dir);
  ca.leaf("server", "/CN=graylane-control-plane", "IP:127.0.0.1,DNS:localhost");
  ca.leaf("shop", "/CN=shop-sidecar", "URI:spiffe://cluster.local/ns/shop/sa/default");
}

const groups = [
  mockGroup({ name: "mock", namespaces: ["shop"] }),
  { name: "other", namespaces: ["payments"], services: [{ name: "pay" }], lanes: [{ name: "canary", services: ["pay"] }] },
  { name: "everywhere", services: [{ name: "common" }] },
];

/** gRPC TLS and node tokens as given; HTTPS for the REST API with `restTls`. */
async function serve(opts: Pick<ControlPlaneOptions, "grpcTls" | "nodeTokens">, restTls = false): Promise<{ server: ControlPlane; grpcPort: number }> {
  const server = await startControlPlane({
    port: 0, grpcPort: 0, store: ":memory:", tls: restTls ? { cert: pem("server.pem"), key: pem("server.key") } : undefined, ...opts,
  });
  for (const g of groups) await server.store.put(g, { actor: "test" });
  return { server, grpcPort: server.grpcPort };
}

/** Subscribes and resolves with the group names of the first RuleSet pushed, or the error. */
function firstRuleSet(client: GraylaneClient, md = new grpc.Metadata()): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const s = client.streamRules({}, md);
    s.on("data", (r: RuleResponse) => { resolve(r.ruleSet?.groups.map((g) => g.name) ?? []); s.cancel(); });
    s.on("error", (e: grpc.ServiceError) => reject(e));
    s.write(create(RuleRequestSchema, { node: { id: "n1" }, instanceId: "n1/1" }));
  });
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "graylane-tls-"));
  makeCerts();
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("identities", () => {
  it("reads the namespace of an Istio / SPIFFE identity", () => {
    expect(spiffeNamespace("DNS:x, URI:spiffe://cluster.local/ns/shop/sa/default")).toBe("shop");
    expect(spiffeNamespace("URI:https://example.com/ns/shop/sa/x")).toBeUndefined();
    expect(spiffeNamespace(undefined)).toBeUndefined();
  });
});

describe("gRPC with mTLS", () => {
  it("a client certificate signed by the CA subscribes and gets its namespace's groups; no certificate, no stream", async () => {
    const { server, grpcPort } = await serve({ grpcTls: { cert: pem("server.pem"), key: pem("server.key"), clientCa: pem("ca.pem") } });
    try {
      const creds = grpc.credentials.createSsl(pem("ca.pem"), pem("shop.key"), pem("shop.pem"));
      const shop = new GraylaneClient(`127.0.0.1:${grpcPort}`, {}, creds);
      expect(await firstRuleSet(shop)).toEqual(["everywhere", "mock"]);
      shop.close();
      const anonymous = new GraylaneClient(`127.0.0.1:${grpcPort}`, {}, grpc.credentials.createSsl(pem("ca.pem")));
      await expect(firstRuleSet(anonymous)).rejects.toMatchObject({ code: expect.any(Number) });
      anonymous.close();
      const plaintext = new GraylaneClient(`127.0.0.1:${grpcPort}`);
      await expect(firstRuleSet(plaintext)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      plaintext.close();
    } finally {
      await server.close();
    }
  });
});

describe("node tokens", () => {
  const shopNode = newToken("shop-sidecars", "node", "shop");
  const anyNode = newToken("all-sidecars", "node");
  const apiAdmin = newToken("ada", "admin");
  const tokens = () => {
    const p = join(dir, "tokens.yaml");
    writeFileSync(p, stringify({ tokens: [shopNode.entry, anyNode.entry, apiAdmin.entry] }));
    return Tokens.fromFile(p);
  };

  it("a subscriber needs a node token; its namespace scopes what it receives; API tokens open nothing here", async () => {
    const { server, grpcPort } = await serve({ nodeTokens: tokens() });
    try {
      const sub = async (t?: string) => {
        const c = new GraylaneClient(`127.0.0.1:${grpcPort}`);
        const md = new grpc.Metadata();
        if (t) md.set("authorization", `Bearer ${t}`);
        try { return await firstRuleSet(c, md); } finally { c.close(); }
      };
      expect(await sub(shopNode.token)).toEqual(["everywhere", "mock"]);
      expect(await sub(anyNode.token)).toEqual(["everywhere", "mock", "other"]);
      await expect(sub()).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: "a node token is required (authorization: Bearer <token>)" });
      await expect(sub("gl_forged")).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: "unknown node token" });
      await expect(sub(apiAdmin.token)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED, details: "unknown node token" });
    } finally {
      await server.close();
    }
  });

  it("a forged traffic report is refused and counts nothing; a node's report counts", async () => {
    const { server, grpcPort } = await serve({ nodeTokens: tokens() });
    try {
      const report = (seq: number) => create(TrafficReportSchema, {
        instanceId: "mocka-1", nodeId: "mocka-1", sequence: BigInt(seq), latencyBoundsMs: [1],
        counters: [{ group: "mock", lane: "canary", route: "canary", service: "mocka", direction: Direction.INBOUND, source: DecisionSource.WEIGHT,
          statusClass: 5, requests: 1000n, latencySumUs: 1000n, latencyBuckets: [1000n, 0n] }],
      });
      const c = new GraylaneClient(`127.0.0.1:${grpcPort}`);
      const md = (t?: string) => { const m = new grpc.Metadata(); if (t) m.set("authorization", `Bearer ${t}`); return m; };
      const send = async (t: string | undefined, seq: number) => { await c.report(report(seq), {}, md(t)); };
      await expect(send(undefined, 1)).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
      const traffic = async () => ((await (await fetch(`${server.url}/v1/traffic?group=mock&window=1h`)).json()) as { services: Array<{ service: string; lane: string; requests: number }> })
        .services.find((r) => r.service === "mocka" && r.lane === "canary")?.requests ?? 0;
      expect(await traffic()).toBe(0);
      await send(shopNode.token, 2);
      expect(await traffic()).toBe(1000);
      c.close();
    } finally {
      await server.close();
    }
  });

  it("the real filter sends its configured token (GrpcService initial_metadata) and subscribes", async () => {
    const { server, grpcPort } = await serve({ nodeTokens: tokens() });
    const bridge = grpcBridge({ cp: `127.0.0.1:${grpcPort}` });
    try {
      const f = await newFilter({ clock: new RealClock() as never, grpc: bridge, config: { cluster: "cp", node: { id: "shop-gw" }, token: shopNode.token } });
      f.vm.tick();
      const end = Date.now() + 5000;
      while (!(await (await fetch(`${server.url}/v1/status`)).json() as { nodes: Array<{ nodeId: string; version: string }> }).nodes.some((n) => n.nodeId === "shop-gw" && n.version)) {
        if (Date.now() > end) throw new Error("the filter did not subscribe");
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(f.decide({ "x-asm-prefer-tag": "canary" }, routeTo("mocka")).route).toBe("canary");
      expect(parseGrpcService(f.vm.grpcStreams[0]!.serviceBytes)!.initialMetadata).toEqual([["authorization", `Bearer ${shopNode.token}`]]);
      // without the token it is refused
      const g = await newFilter({ clock: new RealClock() as never, grpc: bridge, config: { cluster: "cp", node: { id: "no-token" } } });
      g.vm.tick();
      await new Promise((r) => setTimeout(r, 300));
      expect(g.vm.logs.some((l) => /rule stream closed/.test(l.message))).toBe(true);
    } finally {
      bridge.close();
      await server.close();
    }
  });
});

describe("a real Envoy subscribing over TLS", () => {
  const topology = (grpcPort: number, tls: { certFile?: string; keyFile?: string }, plugin: Record<string, unknown> = {}): Topology => ({
    group: "mock",
    services: [{ name: "mocka", paths: ["/mock"], instances: [{ lane: "base", version: "v1", appPort: 1, inboundPort: 2, outboundPort: 3 }] }],
    gateway: { port: 0 },
    controlPlane: { grpcHost: "127.0.0.1", grpcPort, tls: { caFile: join(dir, "ca.pem"), sni: "localhost", ...tls } },
    wasmPath: resolve("filter/build/filter.wasm"),
    plugin: { reportIntervalMs: 1000, ...plugin },
  });
  const acked = async (server: ControlPlane) => {
    const end = Date.now() + 20_000;
    for (;;) {
      const st = (await (await fetch(`${server.url}/v1/status`)).json()) as { nodes: Array<{ nodeId: string; version: string; subscribers: unknown[] }> };
      const gw = st.nodes.find((n) => n.nodeId === "gateway");
      if (gw?.version) return gw;
      if (Date.now() > end) throw new Error(`the gateway did not subscribe: ${JSON.stringify(st)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it("with a client certificate (mTLS), and with a node token over TLS", async () => {
    const tlsFiles = { cert: pem("server.pem"), key: pem("server.key") };
    const mtls = await serve({ grpcTls: { ...tlsFiles, clientCa: pem("ca.pem") } });
    const node = newToken("gw", "node");
    const tokenFile = join(dir, "gw-tokens.yaml");
    writeFileSync(tokenFile, stringify({ tokens: [node.entry] }));
    const byToken = await serve({ grpcTls: tlsFiles, nodeTokens: Tokens.fromFile(tokenFile) });
    const envoys: RunningEnvoy[] = [];
    try {
      envoys.push(await startEnvoy(envoyBin(), "gw-mtls", gatewayConfig(topology(mtls.grpcPort, { certFile: join(dir, "shop.pem"), keyFile: join(dir, "shop.key") })), 1));
      envoys.push(await startEnvoy(envoyBin(), "gw-token", gatewayConfig(topology(byToken.grpcPort, {}, { token: node.token })), 1));
      expect((await acked(mtls.server)).version).toBeTruthy();
      expect((await acked(byToken.server)).version).toBeTruthy();
      // the certificate's SPIFFE namespace (shop) scoped what the mTLS gateway received
      const st = (await (await fetch(`${mtls.server.url}/v1/status`)).json()) as { version: string; nodes: Array<{ nodeId: string; version: string }> };
      expect(st.nodes.find((n) => n.nodeId === "gateway")!.version).not.toBe(st.version);
    } finally {
      await Promise.all(envoys.map((e) => e.stop()));
      await mtls.server.close();
      await byToken.server.close();
    }
  }, 60_000);
});

describe("HTTPS for the API", () => {
  it("serves the API over TLS; the CLI trusts it with --ca", async () => {
    const { server } = await serve({}, true);
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow(); // not trusted without the CA
      let out = "";
      let err = "";
      const code = await main(["--server", server.url, "--ca", join(dir, "ca.pem"), "get", "lanegroups"], { out: (s) => { out += s; }, err: (s) => { err += s; }, env: {} });
      expect({ code, err }).toEqual({ code: 0, err: "" });
      expect(out).toContain("everywhere");
    } finally {
      await server.close();
    }
  });
});
