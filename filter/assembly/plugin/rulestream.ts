// The filter's RuleDiscovery.StreamRules client (DESIGN.md protocol): opens the stream on a tick,
// says who it is on the first request, ACKs or NACKs each RuleSet it is sent, and reconnects with
// jittered backoff when the stream closes. Applying a RuleSet is the root context's business.
import * as host from "../abi/host";
import { BufferType, WasmResult } from "../abi/types";
import { Scratch, utf8 } from "../lane/bytes";
import { encodeRuleRequest, NodeIdentity, RuleResponseView } from "../lane/discovery";
import { Entropy } from "../lane/entropy";

const RULES_SERVICE = utf8("graylane.v1.RuleDiscovery");
const STREAM_RULES = utf8("StreamRules");
const EMPTY = new Uint8Array(0);

function copyBytes(p: usize, l: usize): Uint8Array {
  const out = new Uint8Array(<i32>l);
  memory.copy(out.dataStart, p, l);
  return out;
}

export class RuleStreamClient {
  /** Envoy GrpcService of the control plane (lane/discovery.ts grpcServiceFor). */
  service: Uint8Array = EMPTY;
  instanceId: Uint8Array = EMPTY;
  readonly node: NodeIdentity = new NodeIdentity();
  /** The version this filter runs, sent as version_info. */
  version: Uint8Array = EMPTY;

  private token: u32 = 0;
  private open: bool = false;
  private nextConnectMs: u64 = 0;
  private backoffMs: u32 = 0;
  private readonly out: Scratch = new Scratch();
  readonly response: RuleResponseView = new RuleResponseView();
  private responseBuf: usize = 0;
  // Of the RuleSet takeRuleSet() handed out, until answer().
  private pendingNonce: Uint8Array = EMPTY;
  private pendingVersion: Uint8Array = EMPTY;

  constructor(private entropy: Entropy) {}

  @inline owns(token: u32): bool { return token == this.token && this.open; }

  /** The rule stream opens here, on a tick, never in on_configure (Envoy also runs that in a throwaway VM). */
  tick(now: u64): void {
    if (!this.open && now >= this.nextConnectMs) this.connect(now);
  }

  private connect(now: u64): void {
    if (host.grpcStream(this.service, RULES_SERVICE, STREAM_RULES) != WasmResult.Ok) {
      // The cluster may not exist yet (Envoy adds clusters after listeners): retry on tick.
      this.scheduleReconnect(now);
      return;
    }
    this.token = host.grpcToken;
    this.open = true;
    this.send(true, EMPTY, EMPTY);
  }

  /** First request (with the node), ACK (empty error) or NACK. version_info is what we now run. */
  private send(withNode: bool, nonce: Uint8Array, error: Uint8Array): void {
    const out = this.out;
    encodeRuleRequest(out, withNode ? this.node : null, this.instanceId, this.version, nonce, error);
    host.grpcSend(this.token, copyBytes(out.ptr, out.len), false);
  }

  /** Jittered exponential backoff: 0.5 s doubling to 30 s, each wait drawn from [b/2, b]. */
  private scheduleReconnect(now: u64): void {
    this.backoffMs = this.backoffMs == 0 ? 500 : min(this.backoffMs * 2, 30000);
    const half = this.backoffMs / 2;
    this.nextConnectMs = now + <u64>half + (this.entropy.mix(host.nowNanos()) % <u64>(half + 1));
  }

  /**
   * Reads a message of the stream into `response` (valid until release()); false when it cannot be
   * read or is malformed (logged).
   */
  receive(size: u32): bool {
    if (host.getBufferBytes(BufferType.GrpcReceiveBuffer, 0, size) != WasmResult.Ok) return false;
    this.responseBuf = host.retPtr;
    if (!this.response.read(host.retPtr, host.retLen)) {
      host.logError("graylane: malformed RuleResponse from the control plane");
      this.release();
      return false;
    }
    return true;
  }

  release(): void {
    if (this.responseBuf != 0) host.release(this.responseBuf);
    this.responseBuf = 0;
  }

  /**
   * Takes the RuleSet out of the response read last (a copy that outlives release()) and releases
   * the response. The control plane answers: a later disconnect starts the backoff afresh.
   */
  takeRuleSet(): Uint8Array {
    const r = this.response;
    this.pendingNonce = copyBytes(r.noncePtr, r.nonceLen);
    this.pendingVersion = copyBytes(r.versionPtr, r.versionLen);
    const ruleSet = copyBytes(r.ruleSetPtr, r.ruleSetLen);
    this.release();
    this.backoffMs = 0;
    return ruleSet;
  }

  /** ACKs the RuleSet takeRuleSet() returned (now running its version), or NACKs it with `error`. */
  answer(applied: bool, error: string): void {
    if (applied) {
      this.version = this.pendingVersion;
      this.send(false, this.pendingNonce, EMPTY);
    } else {
      this.send(false, this.pendingNonce, utf8(error.length > 0 ? error : "refused"));
    }
  }

  /** The stream closed: keep the rules, reconnect later. True when it was this stream. */
  closed(token: u32): bool {
    if (!this.owns(token)) return false;
    this.open = false;
    this.token = 0;
    this.scheduleReconnect(host.nowNanos() / 1000000);
    return true;
  }
}
