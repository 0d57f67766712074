// Traffic counters shared by every control-plane replica over etcd. A filter reports to whichever
// replica it is connected to; that replica ingests the report at once and publishes it under
// traffic/<instance id>; every replica (the publisher included, harmlessly: same sequence) ingests
// what its watch delivers. Reports are cumulative with a sequence number, so duplicates and
// reordering are ignored by the ingest, and every replica ends with the same counts.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Etcd3, IKeyValue, Watcher } from "etcd3";
import { followPrefix } from "./follow.js";
import { TrafficReportSchema, type TrafficReport } from "../generated/graylane/v1/traffic_pb.js";
import type { ReportResult, TrafficIngest } from "../traffic/ingest.js";

export class TrafficRelay {
  private watcher: Watcher | undefined;

  private constructor(private readonly client: Etcd3, private readonly prefix: string, private readonly ingest: TrafficIngest) {}

  /** Ingests every instance's latest report already in etcd, then follows new ones. */
  static async start(client: Etcd3, prefix: string, ingest: TrafficIngest): Promise<TrafficRelay> {
    const relay = new TrafficRelay(client, `${prefix}traffic/`, ingest);
    relay.watcher = await followPrefix(client, relay.prefix, (kv) => relay.take(kv), "traffic relay");
    return relay;
  }

  /** The gRPC Traffic.Report sink: ingest here, publish for the other replicas. */
  report(r: TrafficReport): ReportResult {
    const result = this.ingest.report(r);
    if (result.accepted) {
      // A lost publish is covered by the instance's next report (its counters are cumulative).
      void this.client.put(`${this.prefix}${r.instanceId}`).value(Buffer.from(toBinary(TrafficReportSchema, r)))
        .exec().catch((e: Error) => console.error(`graylane traffic relay: publish ${r.instanceId}: ${e.message}`));
    }
    return result;
  }

  private take(kv: IKeyValue): void {
    try {
      this.ingest.report(fromBinary(TrafficReportSchema, kv.value));
    } catch (e) {
      console.error(`graylane traffic relay: ${kv.key.toString()}: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await this.watcher?.cancel().catch(() => undefined);
  }
}
