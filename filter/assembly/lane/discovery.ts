// The filter's side of RuleDiscovery.StreamRules (discovery.proto): RuleRequest encoding and a
// bounds-checked RuleResponse reader. Pure: the plugin does the gRPC calls.
import { Scratch } from "./bytes";
import { ProtoWriter } from "./protowriter";

export class NodeIdentity {
  id: Uint8Array = new Uint8Array(0);
  workload: Uint8Array = new Uint8Array(0);
  namespace: Uint8Array = new Uint8Array(0);
  service: Uint8Array = new Uint8Array(0);
  lane: Uint8Array = new Uint8Array(0);
  filterVersion: Uint8Array = new Uint8Array(0);
  features: Array<Uint8Array> = [];
}

/** RuleRequest: the node only on the first request of a stream; an empty error means ACK. */
export function encodeRuleRequest(
  out: Scratch, node: NodeIdentity | null, instanceId: Uint8Array, versionInfo: Uint8Array,
  nonce: Uint8Array, errorDetail: Uint8Array,
): void {
  out.reset();
  const w = new ProtoWriter(out);
  if (node != null) {
    const at = w.begin(1);
    w.bytes(1, node.id);
    w.bytes(2, node.workload);
    w.bytes(3, node.namespace);
    w.bytes(4, node.service);
    w.bytes(5, node.lane);
    w.bytes(6, node.filterVersion);
    for (let i = 0; i < node.features.length; i++) w.bytes(7, node.features[i]);
    w.end(at);
  }
  w.bytes(2, instanceId);
  w.bytes(3, versionInfo);
  w.bytes(4, nonce);
  if (errorDetail.byteLength > 0) w.bytes(5, errorDetail);
}

/** Envoy's GrpcService {envoy_grpc {cluster_name}}: what proxy_grpc_call/stream take as service. */
export function grpcServiceFor(cluster: Uint8Array, authority: Uint8Array = new Uint8Array(0), token: Uint8Array = new Uint8Array(0)): Uint8Array {
  const s = new Scratch();
  const w = new ProtoWriter(s);
  const at = w.begin(1);
  w.bytes(1, cluster);
  if (authority.byteLength > 0) w.bytes(2, authority); // EnvoyGrpc.authority
  w.end(at);
  if (token.byteLength > 0) {
    // GrpcService.initial_metadata: Envoy adds it to every call on this service.
    const md = w.begin(5);
    w.bytes(1, AUTHORIZATION);
    w.bytes(2, token);
    w.end(md);
  }
  const out = new Uint8Array(<i32>s.len);
  memory.copy(out.dataStart, s.ptr, s.len);
  heap.free(s.ptr);
  return out;
}

const AUTHORIZATION = Uint8Array.wrap(String.UTF8.encode("authorization"));

/**
 * The :authority for gRPC calls through `cluster`. Envoy uses the cluster name when none is set, and
 * an Istio name (`outbound|7071||graylane.ns.svc.cluster.local`) is no valid authority: HTTP/2
 * servers reset such streams. So `outbound|PORT|SUBSET|HOST` becomes `HOST:PORT`.
 */
export function authorityFor(cluster: string, configured: string): string {
  if (configured.length > 0) return configured;
  if (!cluster.startsWith("outbound|")) return "";
  const parts = cluster.split("|");
  if (parts.length != 4 || parts[1].length == 0 || parts[3].length == 0) return "";
  return parts[3] + ":" + parts[1];
}

/** A RuleResponse read in place: each field is a (pointer, length) into the message. */
export class RuleResponseView {
  versionPtr: usize = 0;
  versionLen: usize = 0;
  noncePtr: usize = 0;
  nonceLen: usize = 0;
  ruleSetPtr: usize = 0;
  ruleSetLen: usize = 0;
  hasRuleSet: bool = false;
  reportNow: bool = false;
  /** Signed-override keys (fields 5 and 6); present in every response of a server that has one. */
  keyPtr: usize = 0;
  keyLen: usize = 0;
  prevKeyPtr: usize = 0;
  prevKeyLen: usize = 0;

  private pos: usize = 0;
  private end: usize = 0;

  /** Next varint, or u64.MAX_VALUE when it runs past the end or over 10 bytes. */
  private varint(): u64 {
    let v: u64 = 0;
    for (let shift: u64 = 0; shift < 70; shift += 7) {
      if (this.pos >= this.end) break;
      const b = load<u8>(this.pos++);
      v |= <u64>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    return u64.MAX_VALUE;
  }

  /** False when the bytes are not a well-formed RuleResponse. */
  read(p: usize, l: usize): bool {
    this.versionLen = this.nonceLen = this.ruleSetLen = 0;
    this.versionPtr = this.noncePtr = this.ruleSetPtr = 0;
    this.hasRuleSet = false;
    this.reportNow = false;
    this.keyPtr = this.keyLen = this.prevKeyPtr = this.prevKeyLen = 0;
    this.pos = p;
    this.end = p + l;
    while (this.pos < this.end) {
      const tag = this.varint();
      if (tag == u64.MAX_VALUE || tag < 8) return false; // bad varint or field 0
      const wire = <u32>(tag & 7);
      const field = tag >> 3;
      if (wire == 0) {
        const v = this.varint();
        if (v == u64.MAX_VALUE) return false;
        if (field == 4) this.reportNow = v != 0;
      } else if (wire == 1 || wire == 5) {
        const n: usize = wire == 1 ? 8 : 4;
        if (this.end - this.pos < n) return false;
        this.pos += n;
      } else if (wire == 2) {
        const len = this.varint();
        if (len == u64.MAX_VALUE || len > <u64>(this.end - this.pos)) return false;
        const at = this.pos;
        const n = <usize>len;
        if (field == 1) { this.versionPtr = at; this.versionLen = n; }
        else if (field == 2) { this.noncePtr = at; this.nonceLen = n; }
        else if (field == 3) { this.ruleSetPtr = at; this.ruleSetLen = n; this.hasRuleSet = true; }
        else if (field == 5) { this.keyPtr = at; this.keyLen = n; }
        else if (field == 6) { this.prevKeyPtr = at; this.prevKeyLen = n; }
        this.pos += n;
      } else return false;
    }
    return true;
  }
}
