// Test support: the test-only wasm of the filter's pure lane functions (test/assembly/lane-probe.ts,
// built by make into filter/build/test/lane-probe.wasm), with byte marshalling.
import { readFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { serializePairs } from "../../control-plane/src/wasmhost/index.js";
import { type RuleSet, RuleSetSchema } from "../../control-plane/src/generated/graylane/v1/rules_pb.js";
import { compileGroups } from "./filter.js";

export const LANE_PROBE_PATH = "filter/build/test/lane-probe.wasm";

export interface LaneProbeExports {
  memory: WebAssembly.Memory;
  alloc(n: number): number;
  outPtr(): number;
  outLen(): number;
  hash(p: number, l: number, seed: number): number;
  pairsLoad(p: number, l: number): number;
  pairsCount(): number;
  pairsEntry(i: number): void;
  rulesLoad(p: number, l: number): number;
  route(g: number, lane: number, service: number): number;
  groupSeed(g: number): number;
  destService(p: number, l: number): number;
  destHost(p: number, l: number): number;
  destPath(p: number, l: number): number;
  requestLoad(p: number, l: number): number;
  requestHost(): void;
  metaLoad(p: number, l: number): number;
  metaFields(): void;
  metaServesLane(p: number, l: number): number;
  destFind(edge: number): number;
  edgePlan(none: number): number;
  unroutedPlan(edge: number): number;
  baggageStrip(): number;
  baggageOut(p: number, l: number): void;
  cookie(g: number, idPtr: number): void;
  wireVarint(): number;
  wireBytes(): number;
  wireFirstMessage(): number;
  wireMessages(): number;
  wireFields(message: number): number;
  wireKind(message: number, field: number): number;
  counterKeyOf(group: number, lane: number, route: number, service: number, direction: number, source: number, status: number): bigint;
  counterKeySource(key: bigint): bigint;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytesOf = (b: Uint8Array | string) => (typeof b === "string" ? enc.encode(b) : b);

/** A destination as the filter packs it, unpacked; null for none. */
export type Destination = { group: number; service: number } | null;
export function unpack(d: number): Destination {
  return d === -1 ? null : { group: d >> 16, service: d & 0xffff };
}

export class LaneProbe {
  constructor(readonly x: LaneProbeExports) {}

  static async load(): Promise<LaneProbe> {
    const { instance } = await WebAssembly.instantiate(readFileSync(LANE_PROBE_PATH), { env: { abort: () => { throw new Error("abort"); } } });
    return new LaneProbe(instance.exports as unknown as LaneProbeExports);
  }

  /** Copies bytes into the module's memory; returns [ptr, len]. */
  put(b: Uint8Array | string): [number, number] {
    const bytes = bytesOf(b);
    const p = this.x.alloc(Math.max(bytes.length, 1));
    new Uint8Array(this.x.memory.buffer, p, bytes.length).set(bytes);
    return [p, bytes.length];
  }

  out(): Uint8Array { return new Uint8Array(this.x.memory.buffer, this.x.outPtr(), this.x.outLen()).slice(); }
  outText(): string { return dec.decode(this.out()); }
  outLines(): string[] { const t = this.outText(); return t === "" ? [] : t.split("\n"); }

  /**
   * Lane groups (DESIGN.md JSON) compiled by the control plane, applied to the probe's tables;
   * returns the RuleSet as the generated TypeScript reads it, to find indices by name. `edit` changes
   * the compiled RuleSet first.
   */
  loadGroups(groups: unknown[], edit?: (rs: RuleSet) => void): RuleSet {
    let { bytes } = compileGroups(groups);
    const rs = fromBinary(RuleSetSchema, bytes);
    if (edit) {
      // what the compiler never writes, but the filter must handle
      edit(rs);
      bytes = toBinary(RuleSetSchema, rs);
    }
    const [p, l] = this.put(bytes);
    if (!this.x.rulesLoad(p, l)) throw new Error("RuleSet refused: " + this.outText());
    return rs;
  }

  /** Pairs bytes (the proxy-wasm map encoding) of name/value pairs. */
  static pairs(entries: Array<[string, string]>): Uint8Array {
    return serializePairs(entries.map(([n, v]) => [enc.encode(n), enc.encode(v)] as const));
  }

  request(headers: Array<[string, string]>): boolean { return this.x.requestLoad(...this.put(LaneProbe.pairs(headers))) === 1; }
  meta(entries: Array<[string, string]>): boolean { return this.x.metaLoad(...this.put(LaneProbe.pairs(entries))) === 1; }
}

/** The destination of service `name` in a RuleSet, found by name: what the filter must return. */
export function destinationOf(rs: RuleSet, name: string): { group: number; service: number } {
  for (let g = 0; g < rs.groups.length; g++) {
    const s = rs.groups[g].services.findIndex((x) => x.name === name);
    if (s >= 0) return { group: g, service: s };
  }
  throw new Error("no service " + name);
}
