// filter.wasm as an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
// in the Wasm image format Istio pulls for `WasmPlugin.url: oci://...`: the *oci* variant of the
// Wasm image specification (solo-io/wasm spec.md), which Istio's image fetcher accepts when the
// manifest has exactly two layers, one of them `application/vnd.module.wasm.content.layer.v1+wasm`
// holding the raw module. (The *compat* variant is the other one: a tar+gzip layer with plugin.wasm.)
//
//   oci-layout                       {"imageLayoutVersion": "1.0.0"}
//   index.json                       one manifest, tagged by org.opencontainers.image.ref.name
//   blobs/sha256/<manifest>          config = runtime-config.json; layers = [runtime-config.json, filter.wasm]
//   blobs/sha256/<runtime config>    {"type": "envoy_proxy", "abiVersions": [...], "config": {"root_ids": [...]}}
//   blobs/sha256/<module>            filter.wasm, byte for byte
//
// Deterministic: no timestamps, so the manifest digest is a function of the module alone — which is
// what `graylane mesh manifests` puts in `WasmPlugin.sha256` (Istio checks OCI pulls against the
// manifest digest, http(s) downloads against the module's). The tag lives only in index.json.
//
//   tsx control-plane/src/mesh/oci.ts [WASM] [DIR] [--tag TAG]     (make image)
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

export const WASM_LAYER_MEDIA_TYPE = "application/vnd.module.wasm.content.layer.v1+wasm";
export const WASM_CONFIG_MEDIA_TYPE = "application/vnd.module.wasm.config.v1+json";
export const OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json";
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";
const TITLE = "org.opencontainers.image.title";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface WasmImageOptions {
  /** Tag recorded in index.json (org.opencontainers.image.ref.name); default "latest". */
  tag?: string;
  /** Root ids the module registers (runtime config); default ["graylane"]. */
  rootIds?: string[];
  /** proxy-wasm ABI versions (runtime config); default ["proxy_abi_version_0_2_1"]. */
  abiVersions?: string[];
  /** File name of the module layer (org.opencontainers.image.title); default "filter.wasm". */
  moduleTitle?: string;
}

export interface WasmImageLayout {
  /** Relative path → content, every file of the layout. */
  files: Map<string, Uint8Array>;
  /** "sha256:<hex>" of the manifest: what registries resolve the tag to. */
  manifestDigest: string;
  manifest: { schemaVersion: 2; mediaType: string; config: Descriptor; layers: Descriptor[]; annotations: Record<string, string> };
  index: { schemaVersion: 2; mediaType: string; manifests: Descriptor[] };
}

const utf8 = new TextEncoder();

export function sha256Digest(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

export function blobPath(digest: string): string {
  const [alg, hex] = digest.split(":");
  return `blobs/${alg}/${hex}`;
}

function json(value: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(value));
}

/** The layout's files for `wasm` (pure). */
export function wasmImageLayout(wasm: Uint8Array, opts: WasmImageOptions = {}): WasmImageLayout {
  if (wasm.length < 8 || wasm[0] !== 0x00 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) {
    throw new Error("not a WebAssembly module (no \\0asm header)");
  }
  const files = new Map<string, Uint8Array>();
  const blob = (bytes: Uint8Array, mediaType: string, annotations?: Record<string, string>): Descriptor => {
    const digest = sha256Digest(bytes);
    files.set(blobPath(digest), bytes);
    return { mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) };
  };
  const runtimeConfig = json({
    type: "envoy_proxy",
    abiVersions: opts.abiVersions ?? ["proxy_abi_version_0_2_1"],
    config: { root_ids: opts.rootIds ?? ["graylane"] },
  });
  const config = blob(runtimeConfig, WASM_CONFIG_MEDIA_TYPE);
  const layers = [
    { ...config, annotations: { [TITLE]: "runtime-config.json" } },
    blob(wasm, WASM_LAYER_MEDIA_TYPE, { [TITLE]: opts.moduleTitle ?? "filter.wasm" }),
  ];
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config,
    layers,
    annotations: { [TITLE]: "graylane-filter" },
  };
  const manifestDescriptor = blob(json(manifest), OCI_MANIFEST_MEDIA_TYPE, { [REF_NAME_ANNOTATION]: opts.tag ?? "latest" });
  const index = { schemaVersion: 2 as const, mediaType: OCI_INDEX_MEDIA_TYPE, manifests: [manifestDescriptor] };
  files.set("oci-layout", json({ imageLayoutVersion: "1.0.0" }));
  files.set("index.json", json(index));
  return { files, manifestDigest: manifestDescriptor.digest, manifest, index };
}

/** Writes the layout to `dir`, replacing whatever was there (through a sibling temp directory). */
export function writeOciLayout(dir: string, layout: WasmImageLayout): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const [path, bytes] of layout.files) {
    const file = join(tmp, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

function packageVersion(): string {
  try { return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version; } catch { return "latest"; }
}

// `make image`: tsx control-plane/src/mesh/oci.ts [WASM] [DIR] [--tag TAG]
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--tag");
  const tag = at >= 0 ? args[at + 1] : packageVersion();
  const [wasmPath = "filter/build/filter.wasm", dir = "filter/build/oci"] = args.filter((_, i) => at < 0 || (i !== at && i !== at + 1));
  try {
    const layout = wasmImageLayout(readFileSync(wasmPath), { tag });
    writeOciLayout(dir, layout);
    process.stdout.write(`${dir}: OCI image layout of ${wasmPath}, tag ${tag}, manifest ${layout.manifestDigest}\n`);
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
