// A TrafficReport as ingestion reads it, decoded straight from its bytes: 10,000 filters send 2,000
// reports a second of ~60 counters each, and protobuf-es's reflective decode (BigInts for every
// count and bucket) cost ~150 µs a report, more than ingesting it. Here counter keys are interned
// by the raw bytes of their key fields (a filter sends the same keys every time), counts are plain
// numbers, buckets are normalized to the report's bounds. A report built as a message (tests, the
// CLI) takes the same shape through parseReportMessage; both give identical results.
import type { TrafficReport } from "../generated/graylane/v1/traffic_pb.js";
import { type CounterKey, counterKey, type Counts, NOT_GRPC, normalize } from "./deltas.js";

export interface ParsedCounter extends Counts {
  key: CounterKey;
  /** counterKey(key): what the instance's last values are stored under. */
  storageKey: string;
}

export interface ParsedReport {
  instanceId: string;
  nodeId: string;
  sequence: number;
  bounds: number[];
  /** One per counter key; a key repeated within a report: the later one wins. */
  counters: Map<string, ParsedCounter>;
}

interface Interned {
  key: CounterKey;
  storageKey: string;
}

/** Counter keys seen, by the raw bytes of their key fields (bounded: cleared when it grows past this). */
const MAX_INTERNED = 100_000;
const interned = new Map<string, Interned>();

function intern(raw: string, make: () => CounterKey): Interned {
  let k = interned.get(raw);
  if (!k) {
    if (interned.size >= MAX_INTERNED) interned.clear();
    const key = make();
    k = { key, storageKey: counterKey(key) };
    interned.set(raw, k);
  }
  return k;
}

export class ReportDecodeError extends Error {}

/** Decodes a TrafficReport's bytes (what a filter sent) for ingestion. */
export function parseReportBytes(bytes: Uint8Array): ParsedReport {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(b, 0, b.length);
  let instanceId = "";
  let nodeId = "";
  let sequence = 0;
  const bounds: number[] = [];
  const counterAt: number[] = [];
  while (r.more()) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 2) instanceId = r.string();
    else if (field === 2 && wire === 0) sequence = r.varint();
    else if (field === 3 && wire === 2) nodeId = r.string();
    else if (field === 4 && wire === 2) {
      const end = r.lengthEnd();
      while (r.at < end) bounds.push(r.varint());
    } else if (field === 4 && wire === 0) bounds.push(r.varint());
    else if (field === 5 && wire === 2) {
      const end = r.lengthEnd();
      counterAt.push(r.at, end);
      r.at = end;
    } else r.skip(wire);
  }
  const n = bounds.length + 1;
  const counters = new Map<string, ParsedCounter>();
  for (let i = 0; i < counterAt.length; i += 2) {
    const c = parseCounter(b, counterAt[i]!, counterAt[i + 1]!, n);
    counters.set(c.storageKey, c);
  }
  return { instanceId, nodeId, sequence, bounds, counters };
}

/** Where a counter's four strings are (start, end pairs), reused across counters: no allocation per counter. */
const stringAt = new Int32Array(8);

function parseCounter(b: Buffer, from: number, to: number, n: number): ParsedCounter {
  const r = new Reader(b, from, to);
  stringAt.fill(0);
  let direction = 0;
  let source = 0;
  let statusClass = 0;
  let grpcStatus = NOT_GRPC;
  let requests = 0;
  let sumUs = 0;
  const buckets: number[] = [];
  // Key fields (1..7) are read as offsets; their bytes, when contiguous, are the intern key.
  let keyStart = -1;
  let keyEnd = -1;
  let contiguous = true;
  while (r.more()) {
    const start = r.at;
    const tag = r.varint();
    const field = tag >>> 3;
    const wire = tag & 7;
    const isKey = field >= 1 && field <= 7;
    if (isKey) {
      if (keyStart < 0) keyStart = start;
      else if (keyEnd !== start) contiguous = false;
    }
    if (field >= 1 && field <= 4 && wire === 2) {
      const end = r.lengthEnd();
      stringAt[2 * (field - 1)] = r.at;
      stringAt[2 * (field - 1) + 1] = end;
      r.at = end;
    } else if (field === 5 && wire === 0) direction = r.varint();
    else if (field === 6 && wire === 0) source = r.varint();
    else if (field === 7 && wire === 0) statusClass = r.varint();
    else if (field === 8 && wire === 0) requests = r.varint();
    else if (field === 9 && wire === 2) {
      const end = r.lengthEnd();
      while (r.at < end) buckets.push(r.varint());
    } else if (field === 9 && wire === 0) buckets.push(r.varint());
    else if (field === 10 && wire === 0) sumUs = r.varint();
    else if (field === 11 && wire === 0) grpcStatus = r.varint();
    else r.skip(wire);
    if (isKey) keyEnd = r.at;
  }
  const raw = contiguous ? `${keyStart < 0 ? "" : b.toString("latin1", keyStart, keyEnd)}\u0001${grpcStatus}` : undefined;
  let k = raw === undefined ? undefined : interned.get(raw);
  if (!k) {
    const key: CounterKey = { group: utf8At(b, 0), lane: utf8At(b, 1), route: utf8At(b, 2), service: utf8At(b, 3), direction, source, statusClass, grpcStatus };
    k = intern(raw ?? counterKey(key), () => key);
  }
  return { key: k.key, storageKey: k.storageKey, requests, sumUs, buckets: buckets.length === n ? buckets : normalize(buckets, n) };
}

/** The i-th key string of the counter just read (stringAt). */
function utf8At(b: Buffer, i: number): string {
  return b.toString("utf8", stringAt[2 * i]!, stringAt[2 * i + 1]!);
}

/** A TrafficReport message in the same shape (reports built in code: tests, replicas of old). */
export function parseReportMessage(r: TrafficReport): ParsedReport {
  const bounds = r.latencyBoundsMs.map(Number);
  const n = bounds.length + 1;
  const counters = new Map<string, ParsedCounter>();
  for (const c of r.counters) {
    const key: CounterKey = {
      group: c.group, lane: c.lane, route: c.route, service: c.service,
      direction: c.direction, source: c.source, statusClass: c.statusClass, grpcStatus: c.grpcStatus ?? NOT_GRPC,
    };
    const k = intern(counterKey(key), () => key);
    counters.set(k.storageKey, { key: k.key, storageKey: k.storageKey, requests: Number(c.requests), sumUs: Number(c.latencySumUs), buckets: normalize(c.latencyBuckets.map(Number), n) });
  }
  return { instanceId: r.instanceId, nodeId: r.nodeId, sequence: Number(r.sequence), bounds, counters };
}

/** Protobuf wire reading over b[at, end). */
class Reader {
  constructor(private readonly b: Buffer, public at: number, private readonly end: number) {}

  more(): boolean {
    return this.at < this.end;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.end) throw new ReportDecodeError("TrafficReport: truncated varint");
      const x = this.b[this.at++]!;
      v += (x & 0x7f) * scale;
      if (x < 0x80) return v;
      scale *= 128;
    }
    throw new ReportDecodeError("TrafficReport: varint longer than 10 bytes");
  }

  /** Reads a length and returns where the value ends. */
  lengthEnd(): number {
    const len = this.varint();
    const end = this.at + len;
    if (end > this.end) throw new ReportDecodeError("TrafficReport: length past the end of its message");
    return end;
  }

  string(): string {
    const end = this.lengthEnd();
    const s = this.b.toString("utf8", this.at, end);
    this.at = end;
    return s;
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 5) this.at += 4;
    else if (wire === 2) this.at = this.lengthEnd();
    else throw new ReportDecodeError(`TrafficReport: wire type ${wire} is not supported`);
    if (this.at > this.end) throw new ReportDecodeError("TrafficReport: field past the end of its message");
  }
}
