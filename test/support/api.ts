// Test support: a real control plane (startControlPlane: REST and gRPC on ephemeral ports) over a
// SQLite file in a temp dir, and a small JSON client for its REST API.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from "../../control-plane/src/server/index.js";

export interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

export class TestServer {
  private constructor(
    readonly dir: string,
    readonly file: string,
    public server: ControlPlane,
    private readonly opts: ControlPlaneOptions,
  ) {}

  static async start(opts: ControlPlaneOptions = {}): Promise<TestServer> {
    const dir = mkdtempSync(join(tmpdir(), "graylane-api-"));
    const file = join(dir, "graylane.db");
    const server = await startControlPlane({ port: 0, grpcPort: 0, store: `sqlite:${file}`, ...opts });
    return new TestServer(dir, file, server, opts);
  }

  get url(): string {
    return this.server.url;
  }

  /** Closes the server and its store, then starts a new one on the same file. */
  async restart(): Promise<void> {
    await this.server.close();
    this.server = await startControlPlane({ port: 0, grpcPort: 0, store: `sqlite:${this.file}`, ...this.opts });
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
    const res = await fetch(this.url + path, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try { parsed = text ? JSON.parse(text) : undefined; } catch { /* text */ }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  async stop(): Promise<void> {
    await this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
