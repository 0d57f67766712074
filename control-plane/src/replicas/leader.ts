// One leader among the control-plane replicas (an etcd election: a lease that lapses when its
// holder dies), which runs the release engine; the others serve reads and forward release
// operations to it. The leader's value is its REST URL.
import type { Campaign, Etcd3, Election, ElectionObserver } from "etcd3";

export type LeaderRoute = { self: true } | { self: false; url?: string };

/** One active replica among several (etcd: Leadership; Kubernetes: KubeLeadership). */
export interface LeaderElection {
  readonly isLeader: boolean;
  route(): LeaderRoute;
  /** Starts campaigning as this replica's REST URL (and gRPC address, where followers forward traffic reports). */
  start(url: string, grpcAddress?: string): Promise<void>;
  /** The leader's gRPC address when another replica leads and says it (undefined: this one, or unknown). */
  grpcRoute?(): string | undefined;
  close(): Promise<void>;
}

export class Leadership implements LeaderElection {
  private readonly election: Election;
  private campaign: Campaign | undefined;
  private observer: ElectionObserver | undefined;
  private leaderUrl: string | undefined;
  private url: string | undefined;
  private leading = false;
  private closed = false;

  constructor(client: Etcd3, prefix: string, private readonly hooks: { onElected(): void; onDemoted(): void }, ttlSeconds = 5) {
    this.election = client.election(`${prefix}leader`, ttlSeconds);
  }

  /** Starts campaigning as `url` (once the REST API listens). */
  async start(url: string): Promise<void> {
    this.url = url;
    this.observer = await this.election.observe();
    this.leaderUrl = this.observer.leader();
    this.observer.on("change", (v) => { this.leaderUrl = v; });
    this.run();
  }

  private run(): void {
    if (this.closed) return;
    const c = (this.campaign = this.election.campaign(this.url!));
    c.on("elected", () => {
      this.leading = true;
      this.hooks.onElected();
    });
    c.on("error", (e: Error) => {
      if (this.closed) return;
      console.error(`graylane: leader campaign: ${e.message}; campaigning again`);
      if (this.leading) {
        this.leading = false;
        this.hooks.onDemoted();
      }
      setTimeout(() => this.run(), 1000).unref();
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  route(): LeaderRoute {
    return this.leading ? { self: true } : { self: false, url: this.leaderUrl };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.leading) {
      this.leading = false;
      this.hooks.onDemoted();
    }
    await this.campaign?.resign().catch(() => undefined);
    await this.observer?.cancel().catch(() => undefined);
  }
}
