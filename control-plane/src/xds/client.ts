// Typed grpc-js clients for graylane.v1 (tests, benchmarks, tools), with protobuf-es serializers.
import * as grpc from "@grpc/grpc-js";
import type { RuleRequest, RuleResponse } from "../generated/graylane/v1/discovery_pb.js";
import type { TrafficReport, TrafficReportAck } from "../generated/graylane/v1/traffic_pb.js";
import {
  STREAM_RULES_PATH,
  TRAFFIC_REPORT_PATH,
  deserializeRuleResponse,
  deserializeTrafficReportAck,
  serializeRuleRequest,
  serializeTrafficReport,
} from "./protocol.js";

export class GraylaneClient extends grpc.Client {
  /**
   * @param target host:port
   * @param options grpc channel options; pass {"grpc.use_local_subchannel_pool": 1} for a connection
   *   of its own instead of sharing one with other clients of the same target.
   */
  constructor(target: string, options: grpc.ChannelOptions = {}, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    super(target, credentials, options);
  }

  /** `metadata`: e.g. `authorization: Bearer <node token>`. */
  streamRules(options: grpc.CallOptions = {}, metadata: grpc.Metadata = new grpc.Metadata()): grpc.ClientDuplexStream<RuleRequest, RuleResponse> {
    return this.makeBidiStreamRequest(STREAM_RULES_PATH, serializeRuleRequest, deserializeRuleResponse, metadata, options);
  }

  /** A report as a message, or as the bytes a filter sent (forwarded unchanged). */
  report(report: TrafficReport | Uint8Array, options: grpc.CallOptions = {}, metadata: grpc.Metadata = new grpc.Metadata()): Promise<TrafficReportAck> {
    const serialize = (r: TrafficReport | Uint8Array): Buffer => (r instanceof Uint8Array ? Buffer.from(r.buffer, r.byteOffset, r.byteLength) : serializeTrafficReport(r));
    return new Promise((resolve, reject) => {
      this.makeUnaryRequest(TRAFFIC_REPORT_PATH, serialize, deserializeTrafficReportAck, report, metadata, options, (err, ack) =>
        err || !ack ? reject(err ?? new Error("empty response")) : resolve(ack),
      );
    });
  }
}
