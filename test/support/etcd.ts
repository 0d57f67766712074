// A real etcd (Debian's etcd-server) for tests: its own data directory and ports, started and
// stopped by the test.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts } from "../../demo/stack.js";

export interface RunningEtcd {
  url: string;
  stop(): Promise<void>;
}

export function etcdBin(): string {
  const bin = process.env.ETCD_BIN ?? "/usr/bin/etcd";
  if (!existsSync(bin)) throw new Error(`${bin} not found: install Debian's etcd-server (make test installs etcd-server) or set ETCD_BIN`);
  return bin;
}

export async function startEtcd(): Promise<RunningEtcd> {
  const bin = etcdBin();
  const dir = mkdtempSync(join(tmpdir(), "graylane-etcd-"));
  const [client, peer] = await freePorts(2);
  const url = `http://127.0.0.1:${client}`;
  const proc: ChildProcess = spawn(bin, [
    "--name", "test", "--data-dir", join(dir, "data"),
    "--listen-client-urls", url, "--advertise-client-urls", url,
    "--listen-peer-urls", `http://127.0.0.1:${peer}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer}`,
    "--initial-cluster", `test=http://127.0.0.1:${peer}`, "--log-level", "error",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (d) => { stderr = (stderr + d).slice(-4000); });
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const end = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) { await stop(); throw new Error(`etcd exited ${proc.exitCode}: ${stderr}`); }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
      if (res.ok && ((await res.json()) as { health?: string }).health === "true") break;
    } catch { /* not yet */ }
    if (Date.now() > end) { await stop(); throw new Error(`etcd did not become healthy in 15 s: ${stderr}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `etcd://127.0.0.1:${client}`, stop };
}
