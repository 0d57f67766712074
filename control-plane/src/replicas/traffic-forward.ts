// Traffic reports beside Kubernetes replicas: a filter reports to whichever replica it is connected
// to; a follower ingests the report (its own /metrics) and forwards it to the active replica, which
// runs the release analysis and answers /v1/traffic for every replica (followers pass that read on).
// Reports are cumulative with a sequence number, so a forward that is lost is covered by the next
// one and one that arrives twice is ignored.
import type { ReportResult, TrafficIngest } from "../traffic/ingest.js";
import { GraylaneClient } from "../xds/client.js";

export class TrafficForwarder {
  private client: { address: string; c: GraylaneClient } | undefined;
  /** Forwards that failed (tests and logs). */
  failures = 0;

  constructor(private readonly ingest: TrafficIngest, private readonly leaderGrpc: () => string | undefined) {}

  /**
   * The gRPC Traffic.Report sink: ingest here, forward the same bytes to the active replica. Not
   * async: a report that does not decode throws at once, as the ingest's does (INVALID_ARGUMENT).
   */
  submit(r: Uint8Array): Promise<ReportResult> {
    return this.ingest.submit(r).then((result) => this.forward(r, result));
  }

  private forward(r: Uint8Array, result: ReportResult): ReportResult {
    const to = this.leaderGrpc();
    if (to && result.accepted) {
      if (this.client?.address !== to) {
        this.client?.c.close();
        this.client = { address: to, c: new GraylaneClient(to) };
      }
      this.client.c.report(r, { deadline: Date.now() + 10_000 }).catch((e: Error) => {
        this.failures++;
        if (this.failures % 100 === 1) console.error(`graylane traffic: forwarding a report to the active replica at ${to}: ${e.message} (the next cumulative report covers it)`);
      });
    }
    return result;
  }

  close(): void {
    this.client?.c.close();
  }
}
