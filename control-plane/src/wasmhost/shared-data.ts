// Envoy's shared data: one process-wide key/value store per vm_id, seen by every VM (worker
// thread) of that vm_id. Create one SharedData and pass it to every WasmVm that stands for a worker
// of the same Envoy process.
//
// Semantics (proxy-wasm-cpp-host src/shared_data.cc):
//  - get of a missing key → NotFound;
//  - every successful set stamps the entry with a fresh cas from one process-wide counter
//    (1, 2, 3, ...; 0 is skipped on wrap-around, since cas 0 means "unconditional");
//  - set with cas ≠ 0 on an existing key whose cas differs → CasMismatch (the value is unchanged);
//    on a missing key the cas is not checked;
//  - no eviction, no size limit.
import { WasmResult } from "./abi.js";
import { binaryKey, type Bytes, fromBinaryKey, fromUtf8, toBytes, utf8 } from "./bytes.js";

export interface SharedEntry {
  value: Bytes;
  cas: number;
}

export class SharedData {
  private readonly byVm = new Map<string, Map<string, SharedEntry>>();
  private lastCas = 0;

  private nextCas(): number {
    this.lastCas = (this.lastCas + 1) >>> 0;
    if (this.lastCas === 0) this.lastCas = 1;
    return this.lastCas;
  }

  private space(vmId: string, create: boolean): Map<string, SharedEntry> | undefined {
    let m = this.byVm.get(vmId);
    if (!m && create) this.byVm.set(vmId, (m = new Map()));
    return m;
  }

  // ---- the ABI side (keys as binaryKey strings of the raw key bytes) ----

  /** @internal */
  getRaw(vmId: string, key: string): SharedEntry | undefined {
    return this.byVm.get(vmId)?.get(key);
  }

  /** @internal `value` must not be mutated afterwards (the host passes a fresh copy). */
  setRaw(vmId: string, key: string, value: Bytes, cas: number): WasmResult {
    const m = this.space(vmId, true)!;
    const cur = m.get(key);
    if (cur) {
      if (cas !== 0 && cas !== cur.cas) return WasmResult.CasMismatch;
      cur.value = value;
      cur.cas = this.nextCas();
    } else {
      m.set(key, { value, cas: this.nextCas() });
    }
    return WasmResult.Ok;
  }

  // ---- the test / operator side (string keys are UTF-8) ----

  /**
   * The entry for `key` in `vmId`'s space, or, without a vmId, in the first space that has it
   * (the usual case being a single vm_id).
   */
  get(key: string | Bytes, vmId?: string): SharedEntry | undefined {
    const k = binaryKey(typeof key === "string" ? utf8(key) : key);
    if (vmId !== undefined) return this.getRaw(vmId, k);
    for (const m of this.byVm.values()) {
      const e = m.get(k);
      if (e) return e;
    }
    return undefined;
  }

  /** The value decoded as UTF-8, or undefined. */
  getString(key: string | Bytes, vmId?: string): string | undefined {
    const e = this.get(key, vmId);
    return e ? fromUtf8(e.value) : undefined;
  }

  /** Sets like the module would; returns the WasmResult and, when Ok, the new cas. */
  set(key: string | Bytes, value: string | Bytes, vmId: string, cas = 0): { result: WasmResult; cas: number } {
    const k = binaryKey(typeof key === "string" ? utf8(key) : key);
    const result = this.setRaw(vmId, k, toBytes(value), cas);
    return { result, cas: result === WasmResult.Ok ? this.getRaw(vmId, k)!.cas : 0 };
  }

  /** Number of keys in `vmId`'s space, or in all spaces. */
  keyCount(vmId?: string): number {
    if (vmId !== undefined) return this.byVm.get(vmId)?.size ?? 0;
    let n = 0;
    for (const m of this.byVm.values()) n += m.size;
    return n;
  }

  /** Keys (raw bytes) of `vmId`'s space, or of all spaces. */
  keys(vmId?: string): Bytes[] {
    const spaces = vmId !== undefined ? [this.byVm.get(vmId)] : [...this.byVm.values()];
    const out: Bytes[] = [];
    for (const m of spaces) if (m) for (const k of m.keys()) out.push(fromBinaryKey(k));
    return out;
  }

  clear(): void {
    this.byVm.clear();
  }
}
