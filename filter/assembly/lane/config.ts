// The plugin configuration (JSON), parsed once in on_configure. Unknown keys and wrong types are
// refused with a message naming the key, so a typo cannot silently change routing.
import { base64Decode, J_BOOL, J_NUMBER, J_OBJECT, J_STRING, jsonError, JsonValue, parseJson } from "./json";

export const DIRECTION_AUTO: u32 = 0; // from the xds.listener_direction property
export const DIRECTION_INBOUND: u32 = 1;
export const DIRECTION_OUTBOUND: u32 = 2;

export class PluginConfig {
  cluster: string = "";
  /** :authority of the control-plane gRPC calls (default: derived from an Istio cluster name). */
  authority: string = "";
  /** Node token sent as `authorization: Bearer <token>` on the control-plane calls. */
  token: string = "";
  nodeId: string = "";
  workload: string = "";
  namespace: string = "";
  lane: string = "";
  /** Node metadata label naming the instance's lane, read when node.lane is not set (Istio). */
  laneLabelKey: string = "graylane.io/lane";
  service: string = "";
  edge: bool = false;
  direction: u32 = DIRECTION_AUTO;
  ruleSet: Uint8Array | null = null;
  traceSlots: u32 = 65536;
  traceTtlMillis: u64 = 60000;
  reportIntervalMs: u32 = 5000;
}

export let configError: string = "";

function bad(message: string): PluginConfig | null {
  configError = message;
  return null;
}

function str(v: JsonValue, key: string): bool {
  if (v.kind != J_STRING) { configError = key + ": want a string"; return false; }
  return true;
}

function count(v: JsonValue, key: string, lo: u64, hi: u64): bool {
  if (v.kind != J_NUMBER || v.num < lo || v.num > hi) {
    configError = key + ": want a whole number from " + lo.toString() + " to " + hi.toString();
    return false;
  }
  return true;
}

export function parsePluginConfig(p: usize, l: usize): PluginConfig | null {
  configError = "";
  const c = new PluginConfig();
  // An empty configuration is valid: no rules until the control plane sends some.
  let empty = true;
  for (let i: usize = 0; i < l; i++) {
    const ch = load<u8>(p + i);
    if (ch != 32 && ch != 9 && ch != 10 && ch != 13) { empty = false; break; }
  }
  if (empty) return c;
  const root = parseJson(p, l);
  if (root == null) return bad("invalid JSON: " + jsonError);
  if (root.kind != J_OBJECT) return bad("configuration must be a JSON object");
  for (let i = 0; i < root.keys.length; i++) {
    const k = root.keys[i];
    const v = root.items[i];
    if (k == "cluster") { if (!str(v, k)) return null; c.cluster = v.str; }
    else if (k == "authority") { if (!str(v, k)) return null; c.authority = v.str; }
    else if (k == "token") { if (!str(v, k)) return null; c.token = v.str; }
    else if (k == "service") { if (!str(v, k)) return null; c.service = v.str; }
    else if (k == "edge") {
      if (v.kind != J_BOOL) return bad("edge: want true or false");
      c.edge = v.bool;
    } else if (k == "direction") {
      if (!str(v, k)) return null;
      if (v.str == "inbound") c.direction = DIRECTION_INBOUND;
      else if (v.str == "outbound") c.direction = DIRECTION_OUTBOUND;
      else return bad("direction: want \"inbound\" or \"outbound\"");
    } else if (k == "ruleSet") {
      if (!str(v, k)) return null;
      const bytes = base64Decode(v.str);
      if (bytes == null) return bad("ruleSet: not base64");
      c.ruleSet = bytes;
    } else if (k == "reportIntervalMs") {
      if (!count(v, k, 0, 3600000)) return null;
      c.reportIntervalMs = <u32>v.num;
    } else if (k == "node") {
      if (v.kind != J_OBJECT) return bad("node: want an object");
      for (let j = 0; j < v.keys.length; j++) {
        const nk = v.keys[j];
        const nv = v.items[j];
        const path = "node." + nk;
        if (!str(nv, path)) return null;
        if (nk == "id") c.nodeId = nv.str;
        else if (nk == "workload") c.workload = nv.str;
        else if (nk == "namespace") c.namespace = nv.str;
        else if (nk == "lane") c.lane = nv.str;
        else if (nk == "laneLabelKey") {
          if (nv.str.length == 0) return bad(path + ": want a label key");
          c.laneLabelKey = nv.str;
        }
        else return bad(path + ": unknown key");
      }
    } else if (k == "traceMemory") {
      if (v.kind != J_OBJECT) return bad("traceMemory: want an object");
      for (let j = 0; j < v.keys.length; j++) {
        const tk = v.keys[j];
        const tv = v.items[j];
        if (tk == "slots") { if (!count(tv, "traceMemory.slots", 1, 16777216)) return null; c.traceSlots = <u32>tv.num; }
        else if (tk == "ttlSeconds") { if (!count(tv, "traceMemory.ttlSeconds", 1, 86400)) return null; c.traceTtlMillis = <u64>tv.num * 1000; }
        else return bad("traceMemory." + tk + ": unknown key");
      }
    } else return bad(k + ": unknown key");
  }
  return c;
}
