// A mock service for the demo and the e2e suite: GET /mock answers `<name>(<version>)`, followed by
// `->` and the body of its call to the next service through its sidecar's outbound port (Host = the
// next service). It forwards only the trace header by default, or the lane header instead.
//
//   tsx demo/mock-app.ts --name mocka --version v1 --port 9001 [--next mockb --outbound 15001] [--forward-lane] [--fail-rate 0.3]
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";

export interface MockAppOptions {
  name: string;
  version: string;
  port: number;
  host?: string;
  /** The next service (its name is the Host header), called through `outboundPort`. */
  next?: string;
  outboundPort?: number;
  /** Forward the lane header instead of the trace header. */
  forwardLane?: boolean;
  /** Forward no header at all (not even the trace header): strict isolation's case. */
  forwardNothing?: boolean;
  traceHeader?: string;
  laneHeader?: string;
  /** Share of requests answered 500 (0..1), spread evenly: exactly `rate` of every 1/rate requests. */
  failRate?: number;
}

export interface MockApp {
  port: number;
  options: MockAppOptions;
  close(): Promise<void>;
}

export async function startMockApp(options: MockAppOptions): Promise<MockApp> {
  const host = options.host ?? "127.0.0.1";
  let served = 0;
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || !req.url?.startsWith("/mock")) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const self = `${options.name}(${options.version})`;
    const rate = options.failRate ?? 0;
    const n = served++;
    if (rate > 0 && Math.floor((n + 1) * rate) > Math.floor(n * rate)) {
      res.writeHead(500, { "content-type": "text/plain" }).end(`${self} failed`);
      return;
    }
    if (!options.next || !options.outboundPort) {
      res.writeHead(200, { "content-type": "text/plain" }).end(self);
      return;
    }
    const name = (options.forwardLane ? options.laneHeader ?? "x-graylane-lane" : options.traceHeader ?? "my-request-id").toLowerCase();
    const headers: Record<string, string> = { host: options.next };
    const value = req.headers[name];
    if (typeof value === "string" && !options.forwardNothing) headers[name] = value;
    const out = request({ host, port: options.outboundPort, path: "/mock", method: "GET", headers }, (up) => {
      let body = "";
      up.setEncoding("utf8");
      up.on("data", (d) => (body += d));
      // A failed hop shows its status, so a broken chain says where it broke.
      up.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end(`${self}->${up.statusCode === 200 ? "" : `[${up.statusCode} ${up.headers["x-envoy-upstream-service-time"] === undefined ? "envoy" : "app"}]`}${body}`));
    });
    out.on("error", (e) => res.writeHead(502).end(`${self}->error(${e.message})`));
    out.end();
  });
  // Longer than a client's idle reuse window, so a closing connection rarely meets a new request.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => { server.once("error", reject); server.listen(options.port, host, () => resolve()); });
  return {
    port: (server.address() as AddressInfo).port,
    options,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const flag = (n: string) => { const i = args.indexOf(`--${n}`); return i >= 0 ? args[i + 1] : undefined; };
  const app = await startMockApp({
    name: flag("name") ?? "mock", version: flag("version") ?? "v1", port: Number(flag("port") ?? 0),
    next: flag("next"), outboundPort: flag("outbound") ? Number(flag("outbound")) : undefined,
    forwardLane: args.includes("--forward-lane"), failRate: flag("fail-rate") ? Number(flag("fail-rate")) : undefined,
  });
  console.log(`${app.options.name}(${app.options.version}) on 127.0.0.1:${app.port}`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
