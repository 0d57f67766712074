// API authentication: bearer tokens (stored as hashes) with roles viewer / operator / admin, the
// audit actor taken from the token, open operational routes, and a control plane that refuses to
// listen beyond loopback without tokens.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { main } from "../../control-plane/src/cli/main.js";
import { startControlPlane } from "../../control-plane/src/server/index.js";
import { hashToken, newToken, Tokens } from "../../control-plane/src/auth/tokens.js";
import { isLoopback } from "../../control-plane/src/api/auth.js";
import { TestServer } from "../support/api.js";

const demoGroup = JSON.parse(readFileSync("demo/lanegroup.json", "utf8"));
const viewer = newToken("vera", "viewer");
const operator = newToken("otto", "operator");
const admin = newToken("ada", "admin");
let t: TestServer;

beforeAll(async () => {
  const tokens = Tokens.fromEnv(`ada:admin:${admin.token}`).merge(
    Tokens.fromFile(writeTmp("tokens.yaml", stringify({ tokens: [viewer.entry, operator.entry] }))));
  t = await TestServer.start({ tokens });
});
afterAll(async () => { await t?.stop(); });

let tmpN = 0;
function writeTmp(name: string, text: string): string {
  const p = join(process.env.TMPDIR ?? "/tmp", `graylane-auth-${process.pid}-${tmpN++}-${name}`);
  writeFileSync(p, text);
  return p;
}
const as = (tok?: { token: string }): Record<string, string> => (tok ? { authorization: `Bearer ${tok.token}` } : {});

describe("tokens", () => {
  it("a tokens file holds hashes only; env tokens are hashed on load; bad entries are named", () => {
    expect(operator.entry.sha256).toBe(hashToken(operator.token));
    expect(JSON.stringify(operator.entry)).not.toContain(operator.token);
    const tokens = Tokens.fromFile(writeTmp("t.yaml", stringify({ tokens: [viewer.entry] })));
    expect(tokens.authenticate(viewer.token)).toEqual({ name: "vera", role: "viewer" });
    expect(tokens.authenticate(viewer.token + "x")).toBeUndefined();
    expect(() => Tokens.fromFile(writeTmp("bad.yaml", stringify({ tokens: [{ name: "x", role: "root", sha256: "00" }] })))).toThrow(/\/tokens\/0\/role/);
    expect(() => Tokens.fromEnv("ci:operator:")).toThrow("GRAYLANE_TOKENS entry 1: want name:role:token");
    expect(Tokens.fromEnv("a:viewer:s1, b:admin:s2:with:colons").authenticate("s2:with:colons")).toEqual({ name: "b", role: "admin" });
  });

  it("loopback is told apart from every other address", () => {
    for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) expect(isLoopback(h), h).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.5", "example.com"]) expect(isLoopback(h), h).toBe(false);
  });
});

describe("API with tokens", () => {
  it("no token or an unknown one: 401 with a Bearer challenge; operational routes stay open", async () => {
    const none = await t.call("GET", "/v1/lanegroups");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="graylane"');
    expect(none.body.errors[0].message).toContain("Authorization: Bearer");
    expect((await t.call("GET", "/v1/lanegroups", undefined, { authorization: "Bearer nope" })).body.errors[0].message).toBe("unknown API token");
    for (const p of ["/healthz", "/readyz", "/metrics", "/openapi.json", "/"]) expect((await t.call("GET", p)).status, p).toBe(200);
    expect((await t.call("POST", "/v1/releases", {})).status).toBe(401);
    expect((await t.call("POST", "/v1/traffic/report-now")).status).toBe(401);
  });

  it("viewer reads and previews; writes need operator; the actor is the token's name", async () => {
    const denied = await t.call("PUT", "/v1/lanegroups/mock", demoGroup, as(viewer));
    expect(denied.status).toBe(403);
    expect(denied.body.errors[0].message).toBe("token vera is a viewer; PUT /v1/lanegroups/mock needs operator");
    const put = await t.call("PUT", "/v1/lanegroups/mock", demoGroup, { ...as(operator), "x-graylane-actor": "someone-else" });
    expect(put.status).toBe(201);
    const rev = (await t.call("GET", "/v1/revisions", undefined, as(viewer))).body.revisions[0];
    expect(rev).toMatchObject({ actor: "otto", op: "create" });
    expect((await t.call("GET", "/v1/status", undefined, as(viewer))).status).toBe(200);
    const preview = await t.call("POST", "/v1/preview", { group: "mock", service: "mocka", request: { headers: { "x-asm-prefer-tag": "canary" } } }, as(viewer));
    expect([200, 503]).toContain(preview.status); // 503 only when filter.wasm is not built
    expect((await t.call("POST", "/v1/rollback", { revision: 1 }, as(viewer))).status).toBe(403);
    expect((await t.call("POST", "/v1/releases", { name: "r1", group: "mock", lane: "canary" }, as(viewer))).status).toBe(403);
    const rel = await t.call("POST", "/v1/releases", { name: "r1", group: "mock", lane: "canary" }, as(admin));
    expect(rel.status).toBe(201);
    expect(rel.body.release.createdBy).toBe("ada");
    expect((await t.call("POST", "/v1/releases/r1/abort", undefined, as(operator))).body.release.reason).toBe("aborted by otto");
  });

  it("the CLI sends GRAYLANE_TOKEN (or --token); `token create` prints a token and its file entry", async () => {
    const run = async (env: Record<string, string>, ...argv: string[]) => {
      let out = "";
      let err = "";
      const code = await main(argv, { out: (s) => { out += s; }, err: (s) => { err += s; }, env: { GRAYLANE_SERVER: t.url, ...env } });
      return { code, out, err };
    };
    expect(await run({}, "get", "lanegroups")).toMatchObject({ code: 1, err: expect.stringContaining("an API token is required") });
    expect(await run({ GRAYLANE_TOKEN: viewer.token }, "get", "lanegroups")).toMatchObject({ code: 0, out: expect.stringContaining("mock") });
    expect(await run({}, "--token", operator.token, "delete", "mock")).toMatchObject({ code: 0 });
    const made = await run({}, "token", "create", "--name", "ci", "--role", "viewer");
    const token = /token: (\S+)/.exec(made.out)![1]!;
    const entry = parse(made.out.slice(made.out.indexOf("tokens:")));
    expect(entry.tokens[0]).toEqual({ name: "ci", role: "viewer", sha256: hashToken(token) });
  });
});

describe("listening beyond loopback", () => {
  it("is refused without tokens, and says why", async () => {
    await expect(startControlPlane({ host: "0.0.0.0", port: 0, grpcPort: 0, store: ":memory:" })).rejects.toThrow(
      "refusing to serve the API on 0.0.0.0 without API tokens: give --tokens FILE or GRAYLANE_TOKENS, or listen on 127.0.0.1");
    let out = "";
    let err = "";
    const code = await main(["serve", "--host", "0.0.0.0", "--port", "0", "--grpc-port", "0", "--store", ":memory:"], { out: (s) => { out += s; }, err: (s) => { err += s; }, env: {} });
    expect(code).toBe(2);
    expect(err).toContain("without API tokens");
  });

  it("is allowed with tokens", async () => {
    const s = await startControlPlane({ host: "0.0.0.0", port: 0, grpcPort: 0, store: ":memory:", tokens: Tokens.fromEnv(`ada:admin:${admin.token}`) });
    try {
      const res = await fetch(`http://127.0.0.1:${s.port}/v1/lanegroups`, { headers: as(admin) });
      expect(res.status).toBe(200);
    } finally {
      await s.close();
    }
  });
});
