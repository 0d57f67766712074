// `make image` (control-plane/src/mesh/oci.ts): filter.wasm as an OCI image layout in the Wasm
// format Istio pulls — the layout files, every digest against its blob, the two layers Istio's fetcher
// requires, and the module layer byte for byte the built filter.wasm.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, REF_NAME_ANNOTATION, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
  wasmImageLayout, type Descriptor,
} from "../../control-plane/src/mesh/oci.js";
import { WASM_PATH } from "../support/filter.js";

let dir: string;
let out: string;
const wasm = readFileSync(WASM_PATH);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "graylane-oci-"));
  out = join(dir, "oci");
  // What `make image` runs, with a tag of our own.
  const r = spawnSync("node_modules/.bin/tsx", ["control-plane/src/mesh/oci.ts", WASM_PATH, out, "--tag", "v-test"], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^${out}: OCI image layout of ${WASM_PATH}, tag v-test, manifest sha256:[0-9a-f]{64}\\n$`));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const read = (path: string) => readFileSync(join(out, path));
const readJson = (path: string) => JSON.parse(read(path).toString("utf8"));
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The blob a descriptor names, checked against the descriptor's digest and size. */
function blob(d: Descriptor): Buffer {
  expect(d.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  const bytes = read(`blobs/sha256/${d.digest.slice(7)}`);
  expect(`sha256:${sha256(bytes)}`).toBe(d.digest);
  expect(bytes.length).toBe(d.size);
  return bytes;
}

describe("OCI image layout of filter.wasm", () => {
  it("oci-layout, index.json and nothing else at the top", () => {
    expect(readdirSync(out).sort()).toEqual(["blobs", "index.json", "oci-layout"]);
    expect(readJson("oci-layout")).toEqual({ imageLayoutVersion: "1.0.0" });
    const index = readJson("index.json");
    expect(index).toMatchObject({ schemaVersion: 2, mediaType: OCI_INDEX_MEDIA_TYPE });
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({ mediaType: OCI_MANIFEST_MEDIA_TYPE, annotations: { [REF_NAME_ANNOTATION]: "v-test" } });
  });

  it("every blob is named by the SHA-256 of its content, and every one is referenced", () => {
    const names = readdirSync(join(out, "blobs", "sha256"));
    for (const name of names) expect(sha256(read(`blobs/sha256/${name}`))).toBe(name);
    const index = readJson("index.json");
    const manifest = JSON.parse(blob(index.manifests[0]).toString("utf8"));
    const referenced = new Set([index.manifests[0].digest, manifest.config.digest, ...manifest.layers.map((l: Descriptor) => l.digest)]);
    expect(new Set(names.map((n) => `sha256:${n}`))).toEqual(referenced);
  });

  it("the manifest: Istio's Wasm config and layer media types, two layers, the module byte for byte", () => {
    const manifest = JSON.parse(blob(readJson("index.json").manifests[0]).toString("utf8"));
    expect(manifest).toMatchObject({ schemaVersion: 2, mediaType: OCI_MANIFEST_MEDIA_TYPE, config: { mediaType: WASM_CONFIG_MEDIA_TYPE } });
    // Istio's fetcher takes the *oci* variant only with exactly two layers, and finds the module by media type.
    expect(manifest.layers.map((l: Descriptor) => l.mediaType)).toEqual([WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE]);
    const module = blob(manifest.layers[1]);
    expect(Buffer.compare(module, wasm)).toBe(0);
    expect(manifest.layers[1].annotations).toEqual({ "org.opencontainers.image.title": "filter.wasm" });
    const config = JSON.parse(blob(manifest.config).toString("utf8"));
    expect(config).toEqual({ type: "envoy_proxy", abiVersions: ["proxy_abi_version_0_2_1"], config: { root_ids: ["graylane"] } });
    expect(blob(manifest.layers[0]).equals(blob(manifest.config))).toBe(true);
  });

  it("deterministic: the manifest digest depends on the module only (the tag lives in index.json)", () => {
    const index = readJson("index.json");
    const a = wasmImageLayout(wasm, { tag: "v-test" });
    const b = wasmImageLayout(new Uint8Array(wasm), { tag: "other" });
    expect(a.manifestDigest).toBe(index.manifests[0].digest);
    expect(b.manifestDigest).toBe(a.manifestDigest);
    for (const [path, bytes] of a.files) expect(Buffer.compare(read(path), bytes), path).toBe(0);
    const changed = new Uint8Array(wasm);
    changed[changed.length - 1] ^= 1;
    expect(wasmImageLayout(changed).manifestDigest).not.toBe(a.manifestDigest);
  });

  it("refuses what is not a WebAssembly module; the script exits 2", () => {
    expect(() => wasmImageLayout(new TextEncoder().encode("not wasm at all"))).toThrow(/not a WebAssembly module/);
    const r = spawnSync("node_modules/.bin/tsx", ["control-plane/src/mesh/oci.ts", "package.json", join(dir, "bad")], { encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("error: not a WebAssembly module (no \\0asm header)\n");
    expect(readdirSync(dir)).toEqual(["oci"]);
  });
});
