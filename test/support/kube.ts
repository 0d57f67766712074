// A real Kubernetes API server for the e2e tier: kube-apiserver (built from the k8s.io/kubernetes
// Go module by `make kube-apiserver`, linked at .cache/kube-apiserver) on Debian's etcd, both on
// loopback with their own ports and temporary directories, started and stopped by the test.
//
// What it is: authentication by a static token file (an admin in system:masters, and an
// unprivileged user with no bindings), authorization by RBAC, a generated service-account key
// pair, a self-signed serving certificate the apiserver writes into its --cert-dir (its CA is
// `caFile`). What it is not: there is no kube-controller-manager, scheduler or kubelet, so nothing
// creates ReplicaSets or Pods, fills in Deployment status, runs garbage collection or creates the
// `default` ServiceAccount of a namespace; tests write status through the status subresource where
// those would, and say so.
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePorts } from "../../demo/stack.js";
import { startEtcd, type RunningEtcd } from "./etcd.js";

export const KUBE_VERSION = "v1.32.3";

export interface KubeResponse<T = any> {
  status: number;
  body: T;
}

export interface RunningKube {
  /** https://127.0.0.1:PORT */
  url: string;
  /** bearer token of user `admin`, group `system:masters` (every permission, RBAC bypassed) */
  adminToken: string;
  /** bearer token of user `graylane-user` (only what RBAC grants every authenticated user) */
  userToken: string;
  /**
   * bearer token of the control plane's service account as the API server names it
   * (`system:serviceaccount:graylane-system:graylane-control-plane`, its groups too): what
   * deploy/kubernetes-rbac.yaml binds, so a test runs the control plane under exactly that RBAC
   */
  controlPlaneToken: string;
  /** PEM file of the CA that signed the apiserver's self-signed serving certificate (valid for 127.0.0.1) */
  caFile: string;
  /** one REST call with node:https, verified against caFile; token defaults to adminToken */
  request<T = any>(method: string, path: string, body?: unknown, opts?: { token?: string; contentType?: string }): Promise<KubeResponse<T>>;
  /** the last 8 KB of the apiserver's log (for failure messages) */
  log(): string;
  /** stops kube-apiserver and etcd, removes their directories */
  stop(): Promise<void>;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The kube-apiserver binary: $KUBE_APISERVER_BIN, else .cache/kube-apiserver from `make kube-apiserver`. */
export function kubeApiserverBin(): string {
  const bin = process.env.KUBE_APISERVER_BIN ?? join(repoRoot, ".cache/kube-apiserver");
  if (!existsSync(bin)) {
    throw new Error(`kube-apiserver not found at ${bin}: run \`make kube-apiserver\` (builds ${KUBE_VERSION} from the k8s.io/kubernetes Go module, needs Go >= 1.23; \`make test\` does it) or set KUBE_APISERVER_BIN`);
  }
  return bin;
}

function kubeRequest(url: string, ca: Buffer, defaultToken: string) {
  return <T = any>(method: string, path: string, body?: unknown, opts: { token?: string; contentType?: string } = {}): Promise<KubeResponse<T>> => {
    const data = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${opts.token ?? defaultToken}` };
    if (data !== undefined) {
      headers["content-type"] = opts.contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(data));
    }
    return new Promise((resolvePromise, reject) => {
      const req = httpsRequest(new URL(path, url), { method, headers, ca, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON (e.g. /readyz) */ }
          resolvePromise({ status: res.statusCode ?? 0, body: parsed as T });
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer in 30 s`)));
      req.on("error", reject);
      req.end(data);
    });
  };
}

/** Starts etcd and kube-apiserver; resolves once /readyz answers ok (within 90 s). */
export async function startKube(): Promise<RunningKube> {
  const bin = kubeApiserverBin();
  const dir = mkdtempSync(join(tmpdir(), "graylane-kube-"));
  let etcd: RunningEtcd | undefined;
  let proc: ChildProcess | undefined;
  let log = "";
  const stop = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc!.once("exit", r));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc!.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await etcd?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    etcd = await startEtcd();
    const etcdUrl = etcd.url.replace(/^etcd:/, "http:");

    const adminToken = randomBytes(24).toString("hex");
    const userToken = randomBytes(24).toString("hex");
    const controlPlaneToken = randomBytes(24).toString("hex");
    // token,user,uid,"group1,group2"
    writeFileSync(join(dir, "tokens.csv"), `${adminToken},admin,admin,"system:masters"\n${userToken},graylane-user,graylane-user\n` +
      `${controlPlaneToken},system:serviceaccount:graylane-system:graylane-control-plane,graylane-control-plane,"system:serviceaccounts,system:serviceaccounts:graylane-system"\n`, { mode: 0o600 });
    const sa = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    writeFileSync(join(dir, "sa.pub"), sa.publicKey);
    writeFileSync(join(dir, "sa.key"), sa.privateKey, { mode: 0o600 });
    const certDir = join(dir, "certs");
    mkdirSync(certDir);

    const [port] = await freePorts(1);
    proc = spawn(bin, [
      `--etcd-servers=${etcdUrl}`,
      "--bind-address=127.0.0.1", `--secure-port=${port}`, `--cert-dir=${certDir}`,
      // Loopback only: advertise 127.0.0.1, and keep no `kubernetes` Endpoints (which may not hold
      // a loopback address, and which nothing here would use).
      "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
      "--service-cluster-ip-range=10.96.0.0/16",
      `--token-auth-file=${join(dir, "tokens.csv")}`, "--authorization-mode=RBAC",
      `--service-account-key-file=${join(dir, "sa.pub")}`, `--service-account-signing-key-file=${join(dir, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--profiling=false", "--v=0",
    ], { stdio: ["ignore", "pipe", "pipe"] });
    const keep = (d: Buffer) => { log = (log + d).slice(-8000); };
    proc.stdout!.on("data", keep);
    proc.stderr!.on("data", keep);

    const url = `https://127.0.0.1:${port}`;
    const caFile = join(certDir, "apiserver.crt");
    const end = Date.now() + 90_000;
    let last = "";
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`kube-apiserver exited (${proc.exitCode ?? proc.signalCode}):\n${log}`);
      if (existsSync(caFile)) {
        try {
          const res = await kubeRequest(url, readFileSync(caFile), adminToken)("GET", "/readyz");
          if (res.status === 200) break;
          last = `${res.status} ${String(res.body)}`;
        } catch (e) { last = String(e); }
      }
      if (Date.now() > end) throw new Error(`kube-apiserver not ready in 90 s (last /readyz: ${last}):\n${log}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    return {
      url, adminToken, userToken, controlPlaneToken, caFile,
      request: kubeRequest(url, readFileSync(caFile), adminToken),
      log: () => log,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Writes a kubeconfig for the running API server, authenticating with `token` (default: the admin's). */
export function writeKubeconfig(kube: RunningKube, path: string, token = kube.adminToken): string {
  writeFileSync(path, JSON.stringify({
    apiVersion: "v1", kind: "Config", "current-context": "test",
    clusters: [{ name: "test", cluster: { server: kube.url, "certificate-authority": kube.caFile } }],
    users: [{ name: "user", user: { token } }],
    contexts: [{ name: "test", context: { cluster: "test", user: "user" } }],
  }));
  return path;
}
