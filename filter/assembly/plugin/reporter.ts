// Traffic.Report: the cumulative counters sent to the control plane every `everyMs`, one call at a
// time, numbered so the control plane can take deltas whatever is lost, repeated or reordered.
// A periodic report whose counters did not change since the last answered one is not sent (a root
// context that never counts — each Envoy's main thread — sends none), except every HEARTBEAT_MS so
// the control plane keeps the instance (it forgets instances unseen for days); a report the
// control plane asks for (report_now) always goes.
import * as host from "../abi/host";
import { LogLevel, WasmResult } from "../abi/types";
import { Scratch, utf8 } from "../lane/bytes";
import { Counters } from "../lane/counters";

const TRAFFIC_SERVICE = utf8("graylane.v1.Traffic");
const TRAFFIC_REPORT = utf8("Report");
const EMPTY = new Uint8Array(0);
const HEARTBEAT_MS: u64 = 10 * 60 * 1000;

export class TrafficReporter {
  service: Uint8Array = EMPTY;
  instanceId: Uint8Array = EMPTY;
  nodeId: Uint8Array = EMPTY;
  everyMs: u64 = 0;

  private readonly out: Scratch = new Scratch();
  private sequence: u64 = 0;
  private inFlight: bool = false;
  private lastMs: u64 = 0;
  private token: u32 = 0;
  /** counters.changes in the report in flight, and in the last answered one. */
  private sentChanges: u64 = 0;
  private answeredChanges: u64 = 0;
  private answeredMs: u64 = 0;

  constructor(private counters: Counters) {}

  @inline owns(token: u32): bool { return token == this.token; }

  tick(now: u64): void {
    if (this.everyMs == 0 || (this.lastMs != 0 && now - this.lastMs < this.everyMs)) return;
    const unchanged = this.counters.changes == this.answeredChanges;
    if (unchanged && (this.answeredMs == 0 || now - this.answeredMs < HEARTBEAT_MS)) {
      this.lastMs = now; // nothing new: wait another interval
      return;
    }
    this.reportNow(now);
  }

  /** Sends a report now (unless one is in flight) and restarts the interval from `now`. */
  reportNow(now: u64): void {
    this.lastMs = now;
    if (this.inFlight) return;
    this.sequence++;
    this.sentChanges = this.counters.changes;
    const out = this.out;
    this.counters.report(out, this.instanceId, this.nodeId, this.sequence);
    if (host.grpcCall(this.service, TRAFFIC_SERVICE, TRAFFIC_REPORT, out.ptr, out.len, 5000) == WasmResult.Ok) {
      this.inFlight = true;
      this.token = host.grpcToken;
    }
  }

  // Envoy ends a successful unary call with on_grpc_receive alone; on_grpc_close means it failed.
  received(now: u64): void {
    this.inFlight = false;
    this.answeredChanges = this.sentChanges;
    this.answeredMs = now;
  }

  closed(status: u32): void {
    this.inFlight = false;
    if (status != 0) host.log(LogLevel.Debug, "graylane: traffic report failed with gRPC status " + status.toString());
  }
}
