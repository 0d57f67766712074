// A thin JSON client of the Kubernetes API for the mesh controller: any path, any content type
// (server-side apply needs application/apply-patch+yaml, which the typed clients do not offer for
// arbitrary kinds), authenticated and verified by the KubeConfig in use.
import { request as httpsRequest, type RequestOptions } from "node:https";
import { request as httpRequest } from "node:http";
import { Watch, type KubeConfig } from "@kubernetes/client-node";

export interface KubeAnswer<T = any> {
  status: number;
  body: T;
}

export class KubeClient {
  constructor(private readonly kc: KubeConfig) {}

  async request<T = any>(method: string, path: string, body?: unknown, contentType = "application/json"): Promise<KubeAnswer<T>> {
    const server = this.kc.getCurrentCluster()?.server;
    if (!server) throw new Error("kubeconfig: no current cluster");
    const url = new URL(path, server);
    const opts: RequestOptions = { method, headers: { accept: "application/json" }, timeout: 30_000 };
    await this.kc.applyToHTTPSOptions(opts);
    const data = body === undefined ? undefined : JSON.stringify(body);
    if (data !== undefined) Object.assign(opts.headers!, { "content-type": contentType, "content-length": String(Buffer.byteLength(data)) });
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, opts, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      req.on("error", reject);
      req.end(data);
    });
  }

  /** The request, or an error naming the call and the API server's message unless its status is wanted. */
  async expect<T = any>(ok: number[], method: string, path: string, body?: unknown, contentType?: string): Promise<KubeAnswer<T>> {
    const r = await this.request<T>(method, path, body, contentType);
    if (!ok.includes(r.status)) {
      const msg = (r.body as { message?: string } | undefined)?.message ?? JSON.stringify(r.body);
      throw new Error(`${method} ${path}: HTTP ${r.status}: ${msg}`);
    }
    return r;
  }
}

/**
 * Watches `path` until stop() for the controller's triggers: every event calls onEvent (the caller
 * lists what it needs), and a watch that ends or fails starts again after a second.
 */
export function watchForever(kc: KubeConfig, path: string, onEvent: () => void): { stop(): void } {
  const w = new Watch(kc);
  let stopped = false;
  let current: AbortController | undefined;
  const start = async (): Promise<void> => {
    if (stopped) return;
    try {
      const abort = await w.watch(path, {}, onEvent, () => {
        if (current === abort) current = undefined;
        if (!stopped) setTimeout(() => void start(), 1000);
      });
      if (stopped) abort.abort();
      else current = abort;
    } catch {
      if (!stopped) setTimeout(() => void start(), 1000);
    }
  };
  void start();
  return { stop: () => { stopped = true; current?.abort(); } };
}
