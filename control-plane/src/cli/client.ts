// A small client of the REST API for the CLI: every refusal becomes an ApiError carrying the API's
// {path, message} list, and an unreachable server a ConnectionError, so main() can map each to its
// exit code (1 refused, 2 could not ask).
import { request as httpsRequest } from "node:https";
import type { FieldError } from "../model/errors.js";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: FieldError[],
  ) {
    super(`HTTP ${status}: ` + errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; "));
  }
}

export class ConnectionError extends Error {}

export interface Reply<T> {
  status: number;
  headers: Headers;
  body: T;
}

export class ApiClient {
  readonly server: string;

  constructor(server: string, readonly actor?: string, readonly timeoutMs = 30_000, readonly token?: string, readonly ca?: Buffer) {
    this.server = server.replace(/\/+$/, "");
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const h: Record<string, string> = { accept: "application/json", ...headers };
    if (body !== undefined) h["content-type"] = "application/json";
    if (this.actor) h["x-graylane-actor"] = this.actor;
    if (this.token) h.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      const init = { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) };
      res = this.ca ? await httpsWithCa(this.server + path, init, this.ca, this.timeoutMs)
        : await fetch(this.server + path, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ConnectionError(`cannot reach the control plane at ${this.server}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON: keep the text */ }
    if (res.status >= 400) {
      const errors = (parsed as { errors?: FieldError[] } | undefined)?.errors;
      throw new ApiError(res.status, Array.isArray(errors) ? errors : [{ path: "", message: text || res.statusText }]);
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
}

/** fetch() cannot take a CA in Node 20 without undici; node:https can. */
function httpsWithCa(url: string, init: { method: string; headers: Record<string, string>; body?: string }, ca: Buffer, timeoutMs: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: init.method, headers: init.headers, ca, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers.set(k, v);
        const status = res.statusCode ?? 0;
        resolve(new Response([101, 204, 205, 304].includes(status) ? null : Buffer.concat(chunks), { status, headers }));
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => reject(Object.assign(new Error(e.message), { cause: e })));
    req.end(init.body);
  });
}
