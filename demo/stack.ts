// The demo topology in real processes, shared by `make demo` (demo/run.ts) and the e2e suite: the
// control plane (in process), the mock apps (in process), one sidecar Envoy per instance and the
// ingress gateway Envoy, all from control-plane/src/mesh.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "../control-plane/src/server/index.js";
import { compileRuleSet } from "../control-plane/src/compile/index.js";
import { gatewayConfig, meshConfigs, type Topology } from "../control-plane/src/mesh/envoy-config.js";
import { envoyBin, startEnvoy, type RunningEnvoy } from "../control-plane/src/mesh/envoy-process.js";

export { envoyBin, type RunningEnvoy };
import type { RuleServerStatus } from "../control-plane/src/contracts.js";
import { openStore } from "../control-plane/src/store/index.js";
import { startMockApp, type MockApp } from "./mock-app.js";

export const SERVICES = ["mocka", "mockb", "mockc"] as const;
/** Filter root contexts per Envoy that subscribe (main thread + 2 workers with --concurrency 2). */
export const SUBSCRIBERS_PER_ENVOY = 3;
export const LANES = [{ lane: "base", version: "v1" }, { lane: "canary", version: "v2" }] as const;

export interface StackPorts {
  rest: number;
  grpc: number;
  gateway: number;
  /** First of the 3 × 6 ports of the apps and sidecars (app, inbound, outbound per instance). */
  base: number;
}

export interface StackOptions {
  ports?: Partial<StackPorts>;
  /** ":memory:" (default) or "sqlite:PATH". */
  store?: string;
  group: Record<string, unknown>;
  envoyBin?: string;
  wasmPath?: string;
  reportIntervalMs?: number;
  forwardLane?: boolean;
  /** Release engine timing (the e2e suite shortens it). */
  rollout?: { tickMs?: number; reportSettleMs?: number };
  /** More control-plane options (the Kubernetes suite's mesh controller). */
  controlPlane?: Pick<ControlPlaneOptions, "meshController">;
  log?: (line: string) => void;
}

export interface Stack {
  /** The running control plane (a new object after `startControlPlane`). */
  readonly server: ControlPlane;
  readonly grpcPort: number;
  gatewayUrl: string;
  topology: Topology;
  apps: MockApp[];
  envoys: RunningEnvoy[];
  /** Switch every mock between forwarding the trace header and the lane header. */
  setForwardLane(on: boolean): void;
  /** Make every mock forward no header at all (on) or as before (off). */
  setForwardNothing(on: boolean): void;
  /** Makes one instance's app answer 500 to this share of its requests. */
  setFailRate(service: string, version: string, rate: number): void;
  /** Stops the control plane (REST and gRPC); the Envoys keep running on their last rules. */
  stopControlPlane(): Promise<void>;
  /** Starts it again on the same ports and store; `requiredFeatures` is the test-only NACK hook. */
  startControlPlane(opts?: { requiredFeatures?: string[] }): Promise<void>;
  status(): Promise<RuleServerStatus>;
  /** Waits until every Envoy's filters ACKed the served version; resolves to that version. */
  waitAllAcked(timeoutMs?: number, ids?: string[]): Promise<string>;
  close(): Promise<void>;
}

/** Free loopback ports (bound then released; another process could take one in between). */
/**
 * n ports free now, picked below the kernel's ephemeral range (Linux: 32768–60999), so that no
 * outgoing connection's local port can take one before it is bound (a sidecar's listener, say,
 * while other Envoys are connecting). Elsewhere, or when none is found, the kernel picks.
 */
export async function freePorts(n: number): Promise<number[]> {
  const low = ephemeralLow();
  const out: number[] = [];
  for (let tries = 0; out.length < n && tries < 200 && low > 12_000; tries++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 12_000));
    if (!out.includes(port) && (await canBind(port))) out.push(port);
  }
  while (out.length < n) out.push(await kernelPort(out));
  return out;
}

function ephemeralLow(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = createServer();
    s.once("error", () => r(false));
    s.listen(port, "127.0.0.1", () => s.close(() => r(true)));
  });
}

async function kernelPort(taken: number[]): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((r) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as import("node:net").AddressInfo).port;
        s.close(() => r(p));
      });
    });
    if (!taken.includes(port)) return port;
  }
}

/**
 * Starts something listening on `fixed`, or on a port picked free just now. A port picked free
 * earlier may be taken by the time it is bound (an outgoing connection's local port comes from the
 * same ephemeral range), so a freely picked port that turns out taken is picked again (3 tries).
 */
export async function startOnFreePort<T>(start: (port: number) => Promise<T>, fixed?: number, log: (line: string) => void = () => {}): Promise<{ envoy: T; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port] = fixed ? [fixed] : await freePorts(1);
    try {
      return { envoy: await start(port!), port: port! };
    } catch (e) {
      if (fixed || attempt >= 3 || !/Address already in use/.test(String(e))) throw e;
      log(`port ${port} taken meanwhile; picking another`);
    }
  }
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? (() => {});
  const bin = opts.envoyBin ?? envoyBin();
  const wasmPath = resolve(opts.wasmPath ?? "filter/build/filter.wasm");
  const group = opts.group as { name: string; services: Array<{ name: string; hosts?: string[]; paths?: string[] }>; traceHeader?: string; laneHeader?: string; routeHeader?: string; baseLane?: string };
  const [rest, grpc, gateway] = [opts.ports?.rest ?? 0, opts.ports?.grpc ?? 0, opts.ports?.gateway ?? 0];
  const instancePorts = opts.ports?.base ? Array.from({ length: 18 }, (_, i) => opts.ports!.base! + i) : await freePorts(18);
  let [gwPort] = gateway ? [gateway] : await freePorts(1);

  const apps: MockApp[] = [];
  const envoys: RunningEnvoy[] = [];
  let grpcPort = 0;
  const store = await openStore(opts.store ?? ":memory:");
  let server: ControlPlane | undefined;
  // Started again on the same ports and store after stopControlPlane().
  const start = async (o: { requiredFeatures?: string[] } = {}) => {
    server = await startControlPlane({ ...opts.controlPlane, port: server?.port ?? rest, grpcPort: grpcPort || grpc, store, wasmPath, requiredFeatures: o.requiredFeatures, rollout: opts.rollout });
    grpcPort = server.grpcPort;
  };
  const stopControlPlane = async () => { await server?.close(); };
  const close = async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await stopControlPlane();
    store.close();
  };
  try {
    await start();
  } catch (e) {
    store.close();
    throw e;
  }
  if (!server) throw new Error("unreachable");
  try {
    log(`control plane: REST ${server!.url}, gRPC 127.0.0.1:${grpcPort}`);
    const put = await fetch(`${server.url}/v1/lanegroups/${group.name}`, { method: "PUT", headers: { "content-type": "application/json", "x-graylane-actor": "demo" }, body: JSON.stringify(opts.group) });
    if (put.status >= 300) throw new Error(`lane group refused: ${put.status} ${await put.text()}`);
    log(`lane group ${group.name} applied (revision ${(await put.json() as { revision: number }).revision})`);

    let k = 0;
    const topology: Topology = {
      group: group.name,
      services: SERVICES.map((name) => {
        const g = group.services.find((s) => s.name === name);
        return {
          name, hosts: g?.hosts, paths: g?.paths,
          instances: LANES.map(({ lane, version }) => ({ lane, version, appPort: instancePorts[k++], inboundPort: instancePorts[k++], outboundPort: instancePorts[k++] })),
        };
      }),
      gateway: { port: gwPort },
      controlPlane: { grpcHost: "127.0.0.1", grpcPort },
      baseLane: group.baseLane, routeHeader: group.routeHeader,
      wasmPath,
      plugin: { reportIntervalMs: opts.reportIntervalMs ?? 1000 },
    };

    for (const [s, svc] of topology.services.entries()) {
      for (const inst of svc.instances) {
        apps.push(await startMockApp({ name: svc.name, version: inst.version, port: inst.appPort, next: SERVICES[s + 1],
          outboundPort: inst.outboundPort, forwardLane: opts.forwardLane, traceHeader: group.traceHeader, laneHeader: group.laneHeader }));
      }
    }
    log(`mock apps: ${apps.map((a) => `${a.options.name}(${a.options.version}):${a.port}`).join(" ")}`);

    const sidecars = meshConfigs(topology).filter((c) => c.id !== "gateway");
    envoys.push(...await Promise.all(sidecars.map((c) => startEnvoy(bin, c.id, c.config, 2))));
    log(`sidecars: ${envoys.map((e) => e.id).join(" ")}`);
    const stack: Stack = {
      get server() { return server!; },
      get grpcPort() { return grpcPort; },
      topology, apps, envoys,
      stopControlPlane, startControlPlane: start,
      gatewayUrl: `http://127.0.0.1:${gwPort}`,
      setForwardLane: (on) => { for (const a of apps) a.options.forwardLane = on; },
      setForwardNothing: (on) => { for (const a of apps) a.options.forwardNothing = on; },
      setFailRate: (service, version, rate) => {
        const app = apps.find((a) => a.options.name === service && a.options.version === version);
        if (!app) throw new Error(`no ${service} ${version} instance`);
        app.options.failRate = rate;
      },
      status: async () => (await (await fetch(`${server!.url}/v1/status`)).json()) as RuleServerStatus,
      waitAllAcked: async (timeoutMs = 20_000, ids = envoys.map((e) => e.id)) => {
        const end = Date.now() + timeoutMs;
        for (;;) {
          const st = await stack.status();
          const pending = ids.filter((id) => {
            const node = st.nodes.find((n) => n.nodeId === id);
            const live = node?.subscribers.filter((x) => x.connected) ?? [];
            return !node || live.length < SUBSCRIBERS_PER_ENVOY || node.version !== st.version || live.some((x) => x.ackedVersion !== st.version);
          });
          if (pending.length === 0) return st.version;
          if (Date.now() > end) throw new Error(`not ACKed after ${timeoutMs} ms: ${pending.join(", ")} (${JSON.stringify(st)})`);
          await new Promise((r) => setTimeout(r, 20));
        }
      },
      close,
    };
    await stack.waitAllAcked();
    log("every sidecar filter ACKed");
    // The gateway starts last, with the served rules built in, so it routes right from its first
    // request; then its own subscription ACKs too.
    const ruleSet = Buffer.from(compileRuleSet(store.current().groups).bytes).toString("base64");
    const started = await startOnFreePort((port) => {
      topology.gateway.port = port;
      return startEnvoy(bin, "gateway", gatewayConfig({ ...topology, plugin: { ...topology.plugin, ruleSet } }), 1);
    }, gateway || undefined, log);
    envoys.push(started.envoy);
    gwPort = started.port;
    stack.gatewayUrl = `http://127.0.0.1:${gwPort}`;
    await stack.waitAllAcked();
    log(`gateway on ${stack.gatewayUrl}; every filter ACKed`);
    return stack;
  } catch (e) {
    await close();
    throw e;
  }
}
