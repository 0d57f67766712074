// `graylane serve --webhook-port/--webhook-cert/--webhook-key`: the admission webhook on its own
// HTTPS port beside REST (certificates made with openssl), its HTTP edges (wrong path, method, JSON,
// body), and the flags' and `webhook manifest`'s usage errors. What it answers is
// test/unit/admission.test.ts's; behind a real API server, test/e2e/kube-webhook.test.ts's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { main } from "../../control-plane/src/cli/main.js";
import { makeCa } from "../support/certs.js";

let dir: string;
let ca: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "graylane-webhook-"));
  makeCa(dir).leaf("webhook", "/CN=graylane-webhook", "IP:127.0.0.1");
  ca = readFileSync(join(dir, "ca.pem"));
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(...argv: string[]) {
  let out = "", err = "";
  const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: {} });
  return { code, out, err };
}

function https(method: string, url: string, body?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca, headers: body === undefined ? {} : { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const review = (object: unknown, uid = "u1") => JSON.stringify({
  apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview",
  request: { uid, kind: { group: "graylane.io", version: "v1alpha1", kind: "LaneGroup" }, operation: "CREATE", object },
});

describe("serve --webhook-port", () => {
  it("serves the webhook over HTTPS on its own port, on the store REST writes to", async () => {
    let stop!: () => void;
    let out = "";
    let listening!: (url: string) => void;
    const rest = new Promise<string>((r) => { listening = r; });
    const served = main(["serve", "--port", "0", "--grpc-port", "0", "--store", ":memory:", "--webhook-port", "0",
      "--webhook-cert", join(dir, "webhook.pem"), "--webhook-key", join(dir, "webhook.key")], {
      out: (s) => { out += s; }, err: (s) => { out += s; }, env: {},
      stopSignal: () => new Promise<void>((r) => { stop = r; }), onListening: listening,
    });
    try {
      const restUrl = await rest;
      const m = /admission webhook listening on (https:\/\/127\.0\.0\.1:\d+)\/validate\n/.exec(out);
      expect(m, out).not.toBeNull();
      const url = m![1]!;
      const ok = await https("POST", `${url}/validate`, review({ metadata: { name: "g" }, spec: { services: [{ name: "a" }] } }));
      expect(ok).toEqual({ status: 200, body: { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid: "u1", allowed: true } } });

      // A group written through REST is one the webhook checks against.
      const put = await fetch(`${restUrl}/v1/lanegroups/first`, { method: "PUT", body: JSON.stringify({ services: [{ name: "a" }] }) });
      expect(put.status).toBe(201);
      const clash = await https("POST", `${url}/validate`, review({ metadata: { name: "g" }, spec: { services: [{ name: "a" }] } }, "u2"));
      expect(clash.body.response).toMatchObject({ uid: "u2", allowed: false, status: { code: 422, message: "LaneGroup g: /spec/services/0/name: service a already belongs to lane group first; /spec/services/0/hosts/0: host a already routes to first/a" } });

      expect(await https("GET", `${url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
      expect((await https("GET", `${url}/validate`)).status).toBe(405);
      expect(await https("POST", `${url}/v1/lanegroups`, "{}")).toEqual({ status: 404, body: { errors: [{ path: "", message: "no route POST /v1/lanegroups: the webhook answers POST /validate" }] } });
      const notJson = await https("POST", `${url}/validate`, "{nope");
      expect(notJson.status).toBe(400);
      expect(notJson.body.errors[0].message).toMatch(/^invalid JSON: /);
      expect(await https("POST", `${url}/validate`, JSON.stringify({ kind: "AdmissionReview", apiVersion: "admission.k8s.io/v1" }))).toEqual({
        status: 400, body: { errors: [{ path: "/request", message: "not an AdmissionReview admission.k8s.io/v1: is required (an object)" }] },
      });
      const big = await https("POST", `${url}/validate`, JSON.stringify({ pad: "x".repeat(5 * 1024 * 1024) })).catch((e: Error) => ({ status: 0, body: e.message }));
      expect([413, 0]).toContain(big.status); // 413, or the connection closed before the answer was read
    } finally {
      stop();
      expect(await served).toBe(0);
    }
  });

  it("refuses incomplete or unreadable webhook flags (exit 2, naming them)", async () => {
    const cert = join(dir, "webhook.pem"), key = join(dir, "webhook.key");
    const base = ["serve", "--port", "0", "--grpc-port", "0", "--store", ":memory:"];
    expect(await run(...base, "--webhook-port", "0")).toMatchObject({ code: 2, err: expect.stringContaining("--webhook-port, --webhook-cert and --webhook-key go together") });
    expect(await run(...base, "--webhook-cert", cert, "--webhook-key", key)).toMatchObject({ code: 2, err: expect.stringContaining("go together") });
    expect(await run(...base, "--webhook-port", "x1", "--webhook-cert", cert, "--webhook-key", key)).toMatchObject({ code: 2, err: expect.stringContaining("--webhook-port x1: want 0-65535") });
    expect(await run(...base, "--webhook-port", "0", "--webhook-cert", join(dir, "nope.pem"), "--webhook-key", key)).toMatchObject({ code: 2, err: expect.stringContaining("cannot read the webhook's TLS files") });
  });
});

describe("webhook manifest", () => {
  it("prints the shipped Service and the configuration with the CA as caBundle", async () => {
    const r = await run("webhook", "manifest", "--ca-file", join(dir, "ca.pem"));
    expect(r.code).toBe(0);
    const [service, config] = parseAllDocuments(r.out).map((d) => d.toJS());
    expect(service.kind).toBe("Service");
    expect(config.webhooks[0].clientConfig).toEqual({ service: { namespace: "graylane-system", name: "graylane-webhook", path: "/validate", port: 443 }, caBundle: ca.toString("base64") });
    const other = parseAllDocuments((await run("webhook", "manifest", "--ca-file", join(dir, "ca.pem"), "--service", "ops/gl:8443")).out).map((d) => d.toJS());
    expect(other.map((o) => o.kind)).toEqual(["ValidatingWebhookConfiguration"]);
    expect(other[0].webhooks[0].clientConfig.service).toEqual({ namespace: "ops", name: "gl", path: "/validate", port: 8443 });
  });

  it("names what is wrong with its flags (exit 2)", async () => {
    writeFileSync(join(dir, "not-a-cert"), "hello");
    const ca = join(dir, "ca.pem");
    for (const [argv, message] of [
      [["webhook", "manifest"], "--ca-file"],
      [["webhook", "manifest", "--ca-file", join(dir, "absent.pem")], "--ca-file"],
      [["webhook", "manifest", "--ca-file", join(dir, "not-a-cert")], "not a PEM certificate"],
      [["webhook", "manifest", "--ca-file", ca, "--url", "http://127.0.0.1:9443"], "want https://"],
      [["webhook", "manifest", "--ca-file", ca, "--url", "nope"], "not a URL"],
      [["webhook", "manifest", "--ca-file", ca, "--service", "just-a-name"], "want NAMESPACE/NAME[:PORT]"],
    ] as Array<[string[], string]>) {
      const r = await run(...argv);
      expect(r.code, argv.join(" ")).toBe(2);
      expect(r.err, argv.join(" ")).toContain(message);
    }
  });
});
