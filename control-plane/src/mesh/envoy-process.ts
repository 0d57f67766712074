// Real Envoy processes for the demo, the e2e suite and `make envoy`: find the binary, validate a
// config, start one with its own base id and admin port and wait until its listeners are bound.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

/** ENVOY_BIN, else `envoy` on PATH, else the one `make envoy` installs into .cache/. */
export function envoyBin(): string {
  return process.env.ENVOY_BIN || (spawnSync("sh", ["-c", "command -v envoy"]).stdout.toString().trim() || resolve(".cache/envoy-venv/bin/envoy"));
}

/** `envoy --mode validate`: it loads and configures Wasm filters too, so a filter refusal fails it. */
export function validate(bin: string, config: string): { ok: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "graylane-envoy-"));
  const path = join(dir, "envoy.json");
  writeFileSync(path, config);
  const r = spawnSync(bin, ["--mode", "validate", "-c", path, "--log-level", "error"], { encoding: "utf8" });
  rmSync(dir, { recursive: true, force: true });
  return { ok: r.status === 0, output: r.stdout + r.stderr };
}

export interface RunningEnvoy {
  id: string;
  pid: number;
  admin: string;
  /** Bound listener addresses (host:port), in the order the admin lists them. */
  listeners: string[];
  process: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** Starts Envoy (2 workers, dynamic base id, admin address from a file) and waits for `expectListeners`. */
export interface StartEnvoyOptions {
  logLevel?: string;
  /** Worker threads (default 2, so trace memory is exercised across worker VMs). */
  concurrency?: number;
  /** Pins Envoy to these CPUs with taskset, e.g. "0" (benchmarks); taskset execs, so the pid is Envoy's. */
  cpus?: string;
  /** Start-up deadline (default 20 s). */
  timeoutMs?: number;
}

export async function startEnvoy(bin: string, id: string, config: unknown, expectListeners: number, options: string | StartEnvoyOptions = {}): Promise<RunningEnvoy> {
  const opts: StartEnvoyOptions = typeof options === "string" ? { logLevel: options } : options;
  const dir = mkdtempSync(join(tmpdir(), `graylane-${id}-`));
  writeFileSync(join(dir, "envoy.json"), typeof config === "string" ? config : JSON.stringify(config));
  const adminPath = join(dir, "admin-address");
  let log = "";
  const args = ["-c", join(dir, "envoy.json"), "--concurrency", String(opts.concurrency ?? 2), "--use-dynamic-base-id",
    "--admin-address-path", adminPath, "--log-level", opts.logLevel ?? "warn", "--drain-time-s", "0", "--parent-shutdown-time-s", "1"];
  const [cmd, argv] = opts.cpus !== undefined ? ["taskset", ["-c", opts.cpus, bin, ...args]] : [bin, args];
  const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout!.on("data", (d) => (log = (log + d).slice(-200_000)));
  p.stderr!.on("data", (d) => (log = (log + d).slice(-200_000)));
  const exited = new Promise<void>((r) => p.on("exit", () => r()));
  const stop = async () => {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1500))]);
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const end = Date.now() + (opts.timeoutMs ?? 20_000);
    for (;;) {
      if (p.exitCode !== null) throw new Error(`envoy ${id} exited:\n${log}`);
      if (Date.now() > end) throw new Error(`envoy ${id} did not start:\n${log}`);
      let admin = "";
      try { admin = readFileSync(adminPath, "utf8").trim(); } catch { /* not yet */ }
      if (admin) {
        const res = await fetch(`http://${admin}/listeners?format=json`).catch(() => undefined);
        const body = res?.ok ? (await res.json()) as { listener_statuses?: Array<{ local_address?: { socket_address?: { address?: string; port_value?: number } } }> } : undefined;
        const listeners = (body?.listener_statuses ?? []).flatMap((l) => {
          const sa = l.local_address?.socket_address;
          return sa?.port_value ? [`${sa.address}:${sa.port_value}`] : [];
        });
        if (listeners.length >= expectListeners) return { id, pid: p.pid!, admin: `http://${admin}`, listeners, process: p, log: () => log, stop };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (e) {
    await stop();
    throw e;
  }
}
