// `make demo` as a user runs it: starts, answers the printed curl, stops every process on Ctrl-C
// (SIGINT to its process group) within 3 seconds, and starts again on the same ports.
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { connect } from "node:net";

const env = {
  ...process.env,
  GRAYLANE_REST_PORT: "27070", GRAYLANE_GRPC_PORT: "27071", GRAYLANE_GATEWAY_PORT: "28080", GRAYLANE_MESH_PORT: "25000",
};

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

async function runOnce(): Promise<{ stopMs: number; answer: string }> {
  const p = spawn(process.execPath, ["--import", "tsx", "demo/run.ts"], { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout!.on("data", (d) => (out += d));
  p.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((r) => p.on("exit", () => r()));
  try {
    const end = Date.now() + 60_000;
    while (!out.includes("Graylane demo ready")) {
      if (p.exitCode !== null || Date.now() > end) throw new Error("demo did not get ready:\n" + out);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(out).toContain("curl -s http://127.0.0.1:28080/mock -H 'x-asm-prefer-tag: canary'");
    const res = await fetch("http://127.0.0.1:28080/mock", { headers: { "x-asm-prefer-tag": "canary", "my-request-id": `demo-${Date.now()}` } });
    const answer = await res.text();
    const t0 = Date.now();
    process.kill(-p.pid!, "SIGINT"); // Ctrl-C: the whole process group
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    const stopMs = Date.now() - t0;
    return { stopMs, answer };
  } finally {
    try { process.kill(-p.pid!, "SIGKILL"); } catch { /* gone */ }
  }
}

describe("make demo", () => {
  it("starts, answers, stops within 3 s on Ctrl-C, and runs again", async () => {
    for (let round = 0; round < 2; round++) {
      const { stopMs, answer } = await runOnce();
      expect(answer).toBe("mocka(v2)->mockb(v1)->mockc(v1)");
      expect(stopMs).toBeLessThan(3000);
      for (const port of [27070, 27071, 28080, 25000]) expect(await listening(port), `port ${port} still open`).toBe(false);
    }
  }, 150_000);
});
