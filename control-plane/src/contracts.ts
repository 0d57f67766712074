// Interfaces between the control plane's parts, so each can be built and tested on its own and the
// server (cli `serve`) wires the real ones together.
import type { LaneGroup } from "./model/lanegroup.js";

/** What the rule push needs from the store: the current groups and a signal when they change. */
export interface RuleSource {
  /** The latest committed revision and the lane groups it holds (sorted by name). */
  current(): { revision: number; groups: LaneGroup[] };
  /** Called after every committed revision; returns an unsubscribe function. */
  onChange(listener: (revision: number) => void): () => void;
}

/** One subscriber (filter root context) as the rule server sees it. */
export interface SubscriberStatus {
  nodeId: string;
  instanceId: string;
  connected: boolean;
  /** Last version this subscriber ACKed ("" if none). */
  ackedVersion: string;
  /** Version last sent and not yet answered, if any. */
  pendingVersion?: string;
  lastNack?: { version: string; error: string; at: string };
  connectedAt: string;
}

export interface NodeStatus {
  nodeId: string;
  /** The version every live subscriber of the node has ACKed, or "" when they disagree / none. */
  version: string;
  subscribers: SubscriberStatus[];
}

export interface RuleServerStatus {
  /** Version the control plane currently serves. */
  version: string;
  revision: number;
  nodes: NodeStatus[];
}

/** One replica's subscribers in numbers (what /v1/status shows of every replica; O(1) in size). */
export interface SubscriberSummary {
  /** Live subscribers. */
  connected: number;
  /** Live subscribers whose ACKed version is the one served. */
  atVersion: number;
  /** Live subscribers with a push not answered yet. */
  pending: number;
  /** Live subscribers whose last answer was a NACK. */
  nacked: number;
  /** Live subscribers per ACKed version. */
  byVersion: Record<string, number>;
}

/** Read side of the rule push, for GET /v1/status. */
export interface RuleStatusSource {
  status(): RuleServerStatus;
  /** The live subscribers in numbers, without listing them. */
  summary?(): SubscriberSummary;
  /** Asks every connected filter for its traffic report now; returns how many were asked. */
  requestReports?(): number;
}

export interface TrafficRow {
  service: string;
  lane: string;
  requests: number;
  /** Share of the service's inbound requests in this lane, 0..1. */
  observedShare: number;
  /** Share the rules give this lane by weight, 0..1 (base gets the rest). */
  configuredShare: number;
  /** Share of requests answered 5xx; a gRPC response counts by its grpc-status (UNAVAILABLE: an error). */
  errorRate: number;
  /** Requests of gRPC responses per status name ({"OK": 70, "UNAVAILABLE": 30}); {} without gRPC traffic. */
  grpcStatuses: Record<string, number>;
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface TrafficSummary {
  group: string;
  windowMs: number;
  services: TrafficRow[];
  /** Decisions made at the edge, per lane. */
  edge: Array<{ lane: string; requests: number }>;
}

/** Read side of traffic ingestion, for GET /v1/traffic. */
export interface TrafficSource {
  summary(group: string, windowMs: number): TrafficSummary;
}
