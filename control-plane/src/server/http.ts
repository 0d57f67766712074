// The REST API's listener: HTTP, or HTTPS from certificate files.
import { createServer as createHttpServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";

export interface HttpListener {
  url: string;
  /** The bound port (the one asked for, or an ephemeral one for 0). */
  port: number;
  close(): Promise<void>;
}

export function listenHttp(app: RequestListener, host: string, port: number, tls?: { cert: Buffer; key: Buffer }): Promise<HttpListener> {
  return new Promise((resolve, reject) => {
    const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, app) : createHttpServer(app);
    server.listen(port, host);
    server.once("error", reject);
    server.once("listening", () => {
      const bound = (server.address() as AddressInfo).port;
      resolve({
        url: `${tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${bound}`,
        port: bound,
        // Idle keep-alive connections would hold close() until they time out.
        close: () => new Promise<void>((done) => { server.close(() => done()); server.closeAllConnections(); }),
      });
    });
  });
}
