// `graylane serve`: the store, the REST API and (through `extend`) the gRPC rule push and traffic
// ingestion, started and stopped together. Exported so tests and the demo start a real server.
import type { AddressInfo } from "node:net";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import express from "express";
import { Registry } from "prom-client";
import { createApi, type PathItems } from "../api/index.js";
import type { RuleStatusSource, TrafficSource } from "../contracts.js";
import { DEFAULT_STORE, openStore, type Store } from "../store/index.js";
import { isLoopback } from "../api/auth.js";
import type { Tokens } from "../auth/tokens.js";

export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 7070;

export interface ExtensionContext {
  store: Store;
  /** Routes mounted on the REST app (before its 404 handler). */
  app: express.Router;
  registry: Registry;
}

export interface Extension {
  rules?: RuleStatusSource;
  traffic?: TrafficSource;
  /** OpenAPI paths of routes added to `app`. */
  openapi?: PathItems;
  ready?: () => boolean;
  /** Told the REST URL once the API listens (replicas advertise it to each other). */
  listening?: (url: string) => void | Promise<void>;
  close?: () => Promise<void>;
}

export interface ServerOptions {
  host?: string;
  /** 0: an ephemeral port. */
  port?: number;
  /** A Store, or a --store spec (sqlite:PATH, :memory:). Default sqlite:.data/graylane.db. */
  store?: Store | string;
  wasmPath?: string;
  registry?: Registry;
  /**
   * HOOK for the other parts of the control plane: runs after the store opens and before the REST
   * API starts; e.g. starts the gRPC rule push on 127.0.0.1:7071 and traffic ingestion, and hands
   * back their read sides for /v1/status and /v1/traffic and a close() that `close` awaits.
   */
  extend?: (ctx: ExtensionContext) => Promise<Extension>;
  /** API tokens. Required unless `host` is a loopback address. */
  tokens?: Tokens;
  /** HTTPS for the REST API from certificate files. */
  tls?: { cert: Buffer; key: Buffer };
}

export interface RunningServer {
  url: string;
  port: number;
  store: Store;
  registry: Registry;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const host = opts.host ?? DEFAULT_HOST;
  if (!isLoopback(host) && !(opts.tokens && opts.tokens.size > 0)) {
    // Anyone who reaches the API could pick who sees unreleased code: never open beyond this host.
    throw new Error(`refusing to serve the API on ${host} without API tokens: give --tokens FILE or GRAYLANE_TOKENS, or listen on 127.0.0.1`);
  }
  const ownStore = typeof opts.store !== "object";
  const store = typeof opts.store === "object" ? opts.store : await openStore(opts.store ?? DEFAULT_STORE);
  const registry = opts.registry ?? new Registry();
  const extraRoutes = express.Router();
  let ext: Extension = {};
  try {
    if (opts.extend) ext = await opts.extend({ store, app: extraRoutes, registry });
    const app = createApi({
      store, registry, wasmPath: opts.wasmPath, extraRoutes,
      rules: ext.rules, traffic: ext.traffic, extraOpenApi: ext.openapi, ready: ext.ready, tokens: opts.tokens,
    });
    const server = await listen(app, host, opts.port ?? DEFAULT_PORT, opts.tls);
    const port = (server.address() as AddressInfo).port;
    let closing: Promise<void> | undefined;
    const url = `${opts.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`;
    await ext.listening?.(url);
    return {
      url,
      port, store, registry,
      close: () => (closing ??= (async () => {
        await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
        app.dispose();
        await ext.close?.();
        if (ownStore) await store.close();
      })()),
    };
  } catch (e) {
    await ext.close?.().catch(() => {});
    if (ownStore) await store.close();
    throw e;
  }
}

function listen(app: express.Express, host: string, port: number, tls?: { cert: Buffer; key: Buffer }): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, app) : createHttpServer(app);
    server.listen(port, host);
    server.once("listening", () => resolve(server));
    server.once("error", reject);
  });
}
