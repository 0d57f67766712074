export { SnapshotCache, type Snapshot, type SnapshotCacheOptions, type CacheError } from "./cache.js";
export {
  RuleServer,
  startGrpcServer,
  type GrpcServerHandle,
  type RuleServerEvent,
  type RuleServerOptions,
  type StartGrpcServerOptions,
  type TrafficReportSink,
  keyFingerprint,
} from "./server.js";
export {
  RuleStreams,
  type RuleStream,
  type RuleStreamHandle,
  type RuleStreamsOptions,
  type SnapshotSource,
  type StreamError,
} from "./rule-streams.js";
export { GraylaneClient } from "./client.js";
export {
  STREAM_RULES_PATH,
  TRAFFIC_REPORT_PATH,
  encodeRuleResponse,
  ruleDiscoveryClientDefinition,
  trafficDefinition,
  pushMessage,
  type OutgoingRuleResponse,
  type PushMessage,
} from "./protocol.js";
