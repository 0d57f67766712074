// graylane.v1 on the wire: the method paths, the (de)serializers (protobuf-es toBinary /
// fromBinary, no protobufjs / proto-loader), the pushed RuleResponse encoded once, and the grpc-js
// client definitions (the server is our own, grpc-server.ts).
import type * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  RuleRequestSchema,
  RuleResponseSchema,
  type RuleRequest,
  type RuleResponse,
} from "../generated/graylane/v1/discovery_pb.js";
import {
  TrafficReportAckSchema,
  TrafficReportSchema,
  type TrafficReport,
  type TrafficReportAck,
} from "../generated/graylane/v1/traffic_pb.js";
import { grpcFrame } from "./grpc-wire.js";

export const STREAM_RULES_PATH = "/graylane.v1.RuleDiscovery/StreamRules";
export const TRAFFIC_REPORT_PATH = "/graylane.v1.Traffic/Report";

/**
 * A RuleResponse as the server writes it: the RuleSet is already encoded (once per snapshot), so a
 * push to N subscribers costs N small concatenations instead of N RuleSet encodings.
 */
export interface OutgoingRuleResponse {
  version: string;
  nonce: string;
  /** toBinary(RuleSetSchema, ruleSet) of the snapshot; absent in a report-now request. */
  ruleSetBytes?: Uint8Array;
  /** Ask the filter for its traffic report at once. */
  reportNow?: boolean;
  /** Signed-override keys (current, and the previous one during a rotation). */
  overrideKey?: Uint8Array;
  overrideKeyPrevious?: Uint8Array;
}

/**
 * A RuleResponse ready to write: its fields and its gRPC framing, built once and written as the
 * same Buffer to every stream it goes to.
 */
export interface PushMessage extends Readonly<OutgoingRuleResponse> {
  readonly frame: Buffer;
}

export function pushMessage(r: OutgoingRuleResponse): PushMessage {
  return Object.freeze({ ...r, frame: grpcFrame(encodeRuleResponse(r)) });
}

/** Encodes a RuleResponse (field 3 = the embedded RuleSet bytes) without re-encoding the RuleSet. */
export function encodeRuleResponse(r: OutgoingRuleResponse): Buffer {
  const w = new BinaryWriter();
  if (r.version !== "") w.tag(1, WireType.LengthDelimited).string(r.version);
  if (r.nonce !== "") w.tag(2, WireType.LengthDelimited).string(r.nonce);
  if (r.ruleSetBytes) w.tag(3, WireType.LengthDelimited).bytes(r.ruleSetBytes);
  if (r.reportNow) w.tag(4, WireType.Varint).bool(true);
  if (r.overrideKey?.length) w.tag(5, WireType.LengthDelimited).bytes(r.overrideKey);
  if (r.overrideKeyPrevious?.length) w.tag(6, WireType.LengthDelimited).bytes(r.overrideKeyPrevious);
  const out = w.finish();
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export const serializeRuleRequest = (r: RuleRequest): Buffer => buf(toBinary(RuleRequestSchema, r));
export const deserializeRuleRequest = (b: Buffer): RuleRequest => fromBinary(RuleRequestSchema, b);
export const serializeRuleResponse = (r: RuleResponse): Buffer => buf(toBinary(RuleResponseSchema, r));
export const deserializeRuleResponse = (b: Buffer): RuleResponse => fromBinary(RuleResponseSchema, b);
export const serializeTrafficReport = (r: TrafficReport): Buffer => buf(toBinary(TrafficReportSchema, r));
export const deserializeTrafficReport = (b: Buffer): TrafficReport => fromBinary(TrafficReportSchema, b);
export const serializeTrafficReportAck = (r: TrafficReportAck): Buffer => buf(toBinary(TrafficReportAckSchema, r));
export const deserializeTrafficReportAck = (b: Buffer): TrafficReportAck => fromBinary(TrafficReportAckSchema, b);

/** Client side of graylane.v1.RuleDiscovery (usable with grpc.makeGenericClientConstructor). */
export const ruleDiscoveryClientDefinition = {
  StreamRules: {
    path: STREAM_RULES_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: serializeRuleRequest,
    requestDeserialize: deserializeRuleRequest,
    responseSerialize: serializeRuleResponse,
    responseDeserialize: deserializeRuleResponse,
  } satisfies grpc.MethodDefinition<RuleRequest, RuleResponse>,
} satisfies grpc.ServiceDefinition;

/** graylane.v1.Traffic (both sides). */
export const trafficDefinition = {
  Report: {
    path: TRAFFIC_REPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: serializeTrafficReport,
    requestDeserialize: deserializeTrafficReport,
    responseSerialize: serializeTrafficReportAck,
    responseDeserialize: deserializeTrafficReportAck,
  } satisfies grpc.MethodDefinition<TrafficReport, TrafficReportAck>,
} satisfies grpc.ServiceDefinition;
