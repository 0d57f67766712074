// The one proxy-wasm pairs decoder (filter/assembly/abi/pairs.ts), which indexes both the request
// headers and the route's `graylane` metadata, called directly through the test entry.
import { beforeAll, describe, expect, it } from "vitest";
import { LaneProbe } from "../support/lane-probe.js";

let probe: LaneProbe;
beforeAll(async () => { probe = await LaneProbe.load(); });

const dec = new TextDecoder();

function entries(): Array<[string, string]> {
  const n = probe.x.pairsCount();
  return Array.from({ length: n }, (_, i) => {
    probe.x.pairsEntry(i);
    const [name, value] = dec.decode(probe.out()).split("\0");
    return [name, value] as [string, string];
  });
}

function load(bytes: Uint8Array): number { return probe.x.pairsLoad(...probe.put(bytes)); }

/** A map by hand: count, then (name size, value size) per entry, then the data as given. */
function raw(count: number, sizes: Array<[number, number]>, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + sizes.length * 8 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, count, true);
  sizes.forEach(([k, v], i) => { dv.setUint32(4 + i * 8, k, true); dv.setUint32(8 + i * 8, v, true); });
  out.set(data, 4 + sizes.length * 8);
  return out;
}

describe("pairs decoder", () => {
  it("indexes every entry in order, with empty values and repeated names", () => {
    const map: Array<[string, string]> = [[":path", "/a?b=1"], ["x-empty", ""], ["cookie", "a=1"], ["cookie", "b=2"]];
    expect(load(LaneProbe.pairs(map))).toBe(4);
    expect(entries()).toEqual(map);
  });

  it("reads an empty map (count 0) as no entries, and a map longer than its entries need", () => {
    expect(load(LaneProbe.pairs([]))).toBe(0);
    const padded = new Uint8Array([...LaneProbe.pairs([["a", "1"]]), 7, 7, 7]);
    expect(load(padded)).toBe(1);
    expect(entries()).toEqual([["a", "1"]]);
  });

  it("grows its index past 64 entries", () => {
    const map = Array.from({ length: 300 }, (_, i) => [`h${i}`, `v${i}`] as [string, string]);
    expect(load(LaneProbe.pairs(map))).toBe(300);
    expect(entries()).toEqual(map);
    expect(load(LaneProbe.pairs(map.slice(0, 2)))).toBe(2); // and reuses it for smaller maps
    expect(entries()).toEqual(map.slice(0, 2));
  });

  it("refuses every truncation of a valid map, and leaves no entries from the previous one", () => {
    const bytes = LaneProbe.pairs([["service", "mocka"], ["lane", "canary"]]);
    for (let len = 0; len < bytes.length; len++) {
      expect(load(LaneProbe.pairs([["stale", "x"]]))).toBe(1);
      expect(load(bytes.subarray(0, len)), `first ${len} of ${bytes.length} bytes`).toBe(-1);
      expect(probe.x.pairsCount()).toBe(0);
    }
    expect(load(bytes)).toBe(2);
  });

  it("refuses a count the header slots cannot hold", () => {
    expect(load(raw(2, [[1, 1]], new Uint8Array([97, 0, 98, 0])))).toBe(-1);
    expect(load(raw(0xffffffff, [], new Uint8Array(0)))).toBe(-1);
  });

  it("refuses sizes that only fit by wrapping around (the old route-metadata check let 0xfffffffe through)", () => {
    const data = new Uint8Array([97, 0, 98, 0]);
    expect(load(raw(1, [[0xfffffffe, 0]], data))).toBe(-1);
    expect(load(raw(1, [[0, 0xfffffffe]], data))).toBe(-1);
    expect(load(raw(1, [[0xffffffff, 0xffffffff]], data))).toBe(-1);
    expect(load(raw(1, [[1, 1]], data))).toBe(1); // the same buffer with true sizes
  });

  it("is all or nothing: a bad entry after good ones refuses the whole map", () => {
    const data = new TextEncoder().encode("service\0mocka\0lane\0canary");
    expect(load(raw(2, [[7, 5], [4, 7]], data))).toBe(-1); // last value runs past the end
    expect(probe.x.pairsCount()).toBe(0);
    // the route metadata reader uses the same decoder: its service is not read from half a map
    expect(probe.x.metaLoad(...probe.put(raw(2, [[7, 5], [4, 7]], data)))).toBe(0);
    probe.x.metaFields();
    expect(probe.outText()).toBe("\n");
    // and so does the request view: a malformed header map is an empty request
    expect(probe.x.requestLoad(...probe.put(raw(2, [[10, 5], [4, 7]], new TextEncoder().encode(":authority\0mocka\0lane\0canary"))))).toBe(0);
    probe.x.requestHost();
    expect(probe.outText()).toBe("");
  });
});
