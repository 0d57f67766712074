// One active replica beside `--store kubernetes`: a coordination.k8s.io/v1 Lease, held by the
// replica whose REST URL is its holderIdentity and renewed every `retryMs`; another replica takes it
// once it has not been renewed for `leaseDurationSeconds` (client-go's leader election, in short).
// The holder runs what needs one writer (the release engine, the mesh controller, the Synced
// status); the others serve reads and forward release writes to the holder's URL.
import type { KubeClient } from "../controller/kube-client.js";
import type { LeaderElection, LeaderRoute } from "./leader.js";

export interface KubeLeadershipOptions {
  namespace: string;
  name?: string;
  leaseDurationSeconds?: number;
  retryMs?: number;
  now?: () => Date;
}

const GRPC_ANNOTATION = "graylane.io/grpc-address";

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string; annotations?: Record<string, string> };
  spec: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

/** MicroTime as the API server wants it (RFC 3339 with microseconds). */
const micro = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");

export class KubeLeadership implements LeaderElection {
  private url = "";
  private grpcAddress = "";
  private leading = false;
  private holder: string | undefined;
  private holderGrpc: string | undefined;
  private lastRenew = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private busy: Promise<void> | undefined;
  private readonly path: string;
  private readonly duration: number;
  private readonly now: () => Date;

  constructor(private readonly client: KubeClient, private readonly hooks: { onElected(): void; onDemoted(): void | Promise<void> }, private readonly opts: KubeLeadershipOptions) {
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${opts.namespace}/leases`;
    this.duration = opts.leaseDurationSeconds ?? 15;
    this.now = opts.now ?? (() => new Date());
  }

  get name(): string {
    return this.opts.name ?? "graylane-control-plane";
  }

  async start(url: string, grpcAddress = ""): Promise<void> {
    this.url = url;
    this.grpcAddress = grpcAddress;
    await this.step();
    this.timer = setInterval(() => { this.busy ??= this.step().finally(() => { this.busy = undefined; }); }, this.opts.retryMs ?? 2000);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  route(): LeaderRoute {
    return this.leading ? { self: true } : { self: false, url: this.holder };
  }

  grpcRoute(): string | undefined {
    return this.leading ? undefined : this.holderGrpc;
  }

  /** One round: create, renew or take over the Lease, or follow its holder. */
  private async step(): Promise<void> {
    if (this.closed) return;
    const now = this.now();
    try {
      const got = await this.client.request<Lease>("GET", `${this.path}/${this.name}`);
      if (got.status === 404) {
        const created = await this.client.request<Lease>("POST", this.path, {
          apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.name, namespace: this.opts.namespace, annotations: { [GRPC_ANNOTATION]: this.grpcAddress } },
          spec: { holderIdentity: this.url, leaseDurationSeconds: this.duration, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 },
        });
        if (created.status === 201) this.won(now);
        return;
      }
      if (got.status !== 200) throw new Error(`HTTP ${got.status}: ${(got.body as { message?: string })?.message}`);
      const lease = got.body;
      const holder = lease.spec.holderIdentity ?? "";
      const renewed = Date.parse(lease.spec.renewTime ?? "") || 0;
      const expired = !holder || renewed + (lease.spec.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
      if (holder !== this.url && !expired) {
        this.holder = holder;
        this.holderGrpc = lease.metadata.annotations?.[GRPC_ANNOTATION] || undefined;
        this.lost();
        return;
      }
      const spec = holder === this.url
        ? { ...lease.spec, renewTime: micro(now), leaseDurationSeconds: this.duration }
        : { holderIdentity: this.url, leaseDurationSeconds: this.duration, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 };
      // The resourceVersion makes the update a compare-and-swap: of two replicas taking over, one wins.
      const metadata = { ...lease.metadata, annotations: { ...lease.metadata.annotations, [GRPC_ANNOTATION]: this.grpcAddress } };
      const put = await this.client.request<Lease>("PUT", `${this.path}/${this.name}`, { ...lease, metadata, spec });
      if (put.status === 200) this.won(now);
      else if (put.status === 409) this.lost();
      else throw new Error(`HTTP ${put.status}: ${(put.body as { message?: string })?.message}`);
    } catch (e) {
      console.error(`graylane: leader lease ${this.opts.namespace}/${this.name}: ${(e as Error).message}`);
      // A leader that cannot renew steps down before another replica may take over.
      if (this.leading && now.getTime() - this.lastRenew > (this.duration * 1000) / 2) this.lost();
    }
  }

  private won(at: Date): void {
    this.lastRenew = at.getTime();
    this.holder = this.url;
    if (!this.leading) {
      this.leading = true;
      this.hooks.onElected();
    }
  }

  private lost(): void | Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    return this.hooks.onDemoted();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.busy;
    if (!this.leading) return;
    // What this replica ran as the active one stops first: the next holder must not overlap it.
    await this.lost();
    // Hand over at once: an empty holder is free to take (as client-go's ReleaseOnCancel does).
    const got = await this.client.request<Lease>("GET", `${this.path}/${this.name}`).catch(() => undefined);
    if (got?.status === 200 && got.body.spec.holderIdentity === this.url) {
      await this.client.request("PUT", `${this.path}/${this.name}`, { ...got.body, spec: { ...got.body.spec, holderIdentity: "", renewTime: micro(new Date(0)) } }).catch(() => undefined);
    }
  }
}
