// A small client of the REST API for the CLI: every refusal becomes an ApiError carrying the API's
// {path, message} list, and an unreachable server a ConnectionError, so main() can map each to its
// exit code (1 refused, 2 could not ask).
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

  constructor(server: string, readonly actor?: string, readonly timeoutMs = 30_000, readonly token?: string) {
    this.server = server.replace(/\/+$/, "");
  }

  async request<T = unknown>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const h: Record<string, string> = { accept: "application/json", ...headers };
    if (body !== undefined) h["content-type"] = "application/json";
    if (this.actor) h["x-graylane-actor"] = this.actor;
    if (this.token) h.authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(this.server + path, {
        method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.timeoutMs),
      });
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
