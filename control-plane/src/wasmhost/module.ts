// Loading a proxy-wasm module: compiled once, instantiated per VM (WasmVm.create).
import { readFile } from "node:fs/promises";
import { ABI_VERSION_EXPORT } from "./abi.js";

export interface FilterModule {
  readonly module: WebAssembly.Module;
  readonly imports: WebAssembly.ModuleImportDescriptor[];
  readonly exports: WebAssembly.ModuleExportDescriptor[];
  readonly byteLength: number;
  /** Where it was loaded from, when loaded from a file. */
  readonly path?: string;
}

/** Compiles a proxy-wasm 0.2.1 module from a file path or its bytes. */
export async function loadFilterModule(source: string | URL | Uint8Array): Promise<FilterModule> {
  const path = typeof source === "string" ? source : source instanceof URL ? source.pathname : undefined;
  const bytes = source instanceof Uint8Array ? source : new Uint8Array(await readFile(source));
  return compileFilterModule(bytes, path);
}

export async function compileFilterModule(bytes: Uint8Array, path?: string): Promise<FilterModule> {
  const where = path ?? `${bytes.length}-byte module`;
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>); // never a SharedArrayBuffer here
  } catch (e) {
    throw new Error(`${where}: not a valid WebAssembly module: ${(e as Error).message}`, { cause: e });
  }
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === ABI_VERSION_EXPORT && e.kind === "function")) {
    const found = exports.filter((e) => e.name.startsWith("proxy_abi_version_")).map((e) => e.name);
    throw new Error(
      `${where}: not a proxy-wasm 0.2.1 module: it does not export ${ABI_VERSION_EXPORT}` +
        (found.length ? ` (it exports ${found.join(", ")})` : ""),
    );
  }
  return { module, imports: WebAssembly.Module.imports(module), exports, byteLength: bytes.length, path };
}
