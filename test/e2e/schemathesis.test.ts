// schemathesis (PyPI, pinned in the Makefile, installed into .cache/schemathesis-venv by `make
// test`) against /openapi.json of a live control plane: the real server (REST API, gRPC rule push,
// traffic ingestion, release engine) on an ephemeral port with a temporary SQLite store, the demo
// lane group applied and a release of its canary lane started first, so there is data to read,
// replace, operate on and delete.
//
// Every operation gets a bounded number of generated requests (valid and invalid ones) in the
// coverage, fuzzing and stateful phases, with a fixed seed; the test fails when any response is a
// 5xx, has a status code the document does not list, a body that breaks its schema, or a content
// type or headers other than documented. SCHEMATHESIS_BIN overrides the binary,
// SCHEMATHESIS_EXAMPLES (default 25) the examples per operation, SCHEMATHESIS_SEED the seed.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "../../control-plane/src/server/index.js";

const BIN = process.env.SCHEMATHESIS_BIN || resolve(".cache/schemathesis-venv/bin/schemathesis");
const EXAMPLES = Number(process.env.SCHEMATHESIS_EXAMPLES || 25);
const SEED = Number(process.env.SCHEMATHESIS_SEED || 20_261_123);
const CHECKS = ["not_a_server_error", "status_code_conformance", "response_schema_conformance", "content_type_conformance", "response_headers_conformance"];

let dir: string;
let server: ControlPlane;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "graylane-schemathesis-"));
  server = await startControlPlane({ port: 0, grpcPort: 0, store: `sqlite:${join(dir, "graylane.db")}` });
  const put = await fetch(`${server.url}/v1/lanegroups/mock`, { method: "PUT", headers: { "content-type": "application/json" }, body: readFileSync("demo/lanegroup.json", "utf8") });
  expect(put.status).toBe(201);
  const release = await fetch(`${server.url}/v1/releases`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "r1", group: "mock", lane: "canary" }) });
  expect(release.status).toBe(201);
  // Half of the generated `name` path parameters name what exists (the group, the release), so
  // GET/DELETE /v1/lanegroups/{name} and the release operations reach their real work too.
  writeFileSync(join(dir, "schemathesis.toml"), [
    "[dictionaries.names]", 'values = ["mock", "r1"]', "",
    "[parameters]", '"path.name" = { dictionary = "names", probability = 0.5 }', "",
  ].join("\n"));
});

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(bin: string, args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const p = spawn(bin, args, { cwd, env: { ...process.env, NO_COLOR: "1", PYTHONUNBUFFERED: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d) => (output += d));
    p.stderr.on("data", (d) => (output += d));
    p.on("error", fail);
    p.on("close", (code) => done({ code, output }));
  });
}

it(`schemathesis finds no 5xx and no response that breaks /openapi.json (${EXAMPLES} examples per operation)`, async () => {
  if (!existsSync(BIN)) throw new Error(`${BIN} not found: run \`make schemathesis\` (make test does), or set SCHEMATHESIS_BIN`);
  const start = performance.now();
  // Its working directory is the temporary one: schemathesis keeps caches in the current directory.
  const { code, output } = await run(BIN, [
    "run", `${server.url}/openapi.json`,
    "--checks", CHECKS.join(","),
    "--max-examples", String(EXAMPLES),
    "--seed", String(SEED),
    "--generation-database", "none",
    // One worker: with two threads, CPython's ast module (which hypothesis uses to describe
    // strategies) now and then raised "AST constructor recursion depth mismatch" (python/cpython
    // #106905), a schemathesis "Runtime Error" that failed the run without any API response wrong.
    "--workers", "1",
    "--request-timeout", "10",
    "--no-color",
  ], dir);
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  // The run's closing sections: errors, failures (each with a curl to reproduce it), warnings, summary.
  const at = output.search(/^=+ (ERRORS|FAILURES|WARNINGS|SUMMARY) =+$/m);
  console.log(`schemathesis (${seconds} s, exit ${code}):\n${at >= 0 ? output.slice(at) : output}`);
  expect(output).toMatch(/Specification:\s+Open API 3\.1/);
  expect(code, "schemathesis reported failures (above)").toBe(0);
  expect(output).toMatch(/\d+ generated, \d+ passed/);
}, 120_000);
