// Envoy properties (proxy_get_property / proxy_set_property).
//
// Configured as a record keyed by dotted path ("xds.listener_direction") or, for segments that
// themselves contain dots (filter_state keys), by 0x00-separated path ("filter_state\0envoy.x").
// The module asks with 0x00-separated segments, as every SDK serialises a path. A single-segment
// dotted request ("xds.listener_direction" with no 0x00) is NOT found, as in Envoy.
//
// Value encodings, as Envoy serialises them:
//   string → UTF-8 bytes; Uint8Array → as is; integer number / bigint → int64 LE (8 bytes);
//   non-integer number → float64 LE (8 bytes); boolean → 1 byte (0 / 1).
// A map of strings (route metadata such as `xds.route_metadata.filter_metadata.graylane`) is read
// whole as proxy-wasm pairs (u32 count, count × (u32 key size, u32 value size), each key and value
// NUL-ended), as Envoy 1.40 answers; it is configured either as an object or as its children's
// dotted paths ("….graylane.service"), and both the map and each child can be read, as in Envoy.
import { binaryKey, type Bytes, utf8 } from "./bytes.js";
import { serializePairs } from "./header-map.js";

export type PropertyValue = string | Uint8Array | number | bigint | boolean | Readonly<Record<string, string>>;
export type PropertyRecord = Readonly<Record<string, PropertyValue>>;

/** Map key for a configured path: segments joined by 0x00, as the module sends them. */
export function propertyKey(path: string): string {
  return binaryKey(utf8(path.includes("\0") ? path : path.split(".").join("\0")));
}

/** Map key for a path the module sent (a trailing 0x00, which some SDKs add, is ignored). */
export function wirePropertyKey(path: Bytes): string {
  const p = path.length > 0 && path[path.length - 1] === 0 ? path.subarray(0, path.length - 1) : path;
  return binaryKey(p);
}

export function encodeProperty(v: PropertyValue): Bytes {
  if (typeof v === "string") return utf8(v);
  if (v instanceof Uint8Array) return v.slice();
  if (typeof v === "boolean") return new Uint8Array([v ? 1 : 0]);
  if (typeof v === "object") return serializePairs(Object.entries(v).map(([k, x]) => [utf8(k), utf8(x)] as const));
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  if (typeof v === "bigint") dv.setBigInt64(0, BigInt.asIntN(64, v), true);
  else if (Number.isInteger(v)) dv.setBigInt64(0, BigInt(v), true);
  else dv.setFloat64(0, v, true);
  return out;
}

/** Encoded properties, looked up by wire key. */
export class PropertyStore {
  private readonly values = new Map<string, Bytes>();

  constructor(record?: PropertyRecord) {
    if (record) for (const [k, v] of Object.entries(record)) this.set(k, v);
  }

  set(path: string, value: PropertyValue): void {
    if (typeof value === "object" && !(value instanceof Uint8Array)) {
      // A map: stored as its children, read whole by getWire.
      for (const [k, v] of Object.entries(value)) this.values.set(`${propertyKey(path)}\0${binaryKey(utf8(k))}`, encodeProperty(v));
      return;
    }
    this.values.set(propertyKey(path), encodeProperty(value));
  }

  delete(path: string): void {
    this.values.delete(propertyKey(path));
  }

  /** @internal A configured value, or the string map of a configured path's direct children. */
  getWire(key: string): Bytes | undefined {
    const v = this.values.get(key);
    if (v !== undefined) return v;
    const prefix = `${key}\0`;
    const children: Array<readonly [Bytes, Bytes]> = [];
    for (const [k, x] of this.values) {
      if (!k.startsWith(prefix)) continue;
      const name = k.slice(prefix.length);
      if (name.length === 0 || name.includes("\0")) continue;
      children.push([Uint8Array.from(name, (c) => c.charCodeAt(0)), x] as const);
    }
    return children.length > 0 ? serializePairs(children) : undefined;
  }

  /** @internal */
  setWire(key: string, value: Bytes): void {
    this.values.set(key, value);
  }
}
