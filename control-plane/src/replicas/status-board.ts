// Every replica's subscribers, seen from any replica: each publishes its summary (numbers, not a
// list: 10,000 subscribers stay a few hundred bytes) under status/<replica id> in etcd, attached to
// a lease it keeps alive, so a replica that dies (kill -9) drops off the board when its lease
// expires, and GET /v1/status on any replica reads the board.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Etcd3, Lease } from "etcd3";
import type { SubscriberSummary } from "../contracts.js";

export interface ReplicaStatus extends SubscriberSummary {
  replica: string;
  /** The version the replica serves. */
  version: string;
  updatedAt: string;
}

export interface StatusBoardOptions {
  /** How often the summary is written (default 2 s; only when it changed, and at least every ttl/2). */
  publishMs?: number;
  /** Lease TTL: how long a dead replica stays on the board (default 10 s). */
  ttlSeconds?: number;
}

export class StatusBoard {
  readonly replica: string;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = "";
  private lastAt = 0;

  private constructor(private readonly client: Etcd3, private readonly prefix: string, private readonly local: () => Omit<ReplicaStatus, "replica" | "updatedAt">, private readonly opts: Required<StatusBoardOptions>) {
    this.replica = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  }

  static async start(client: Etcd3, prefix: string, local: () => Omit<ReplicaStatus, "replica" | "updatedAt">, options: StatusBoardOptions = {}): Promise<StatusBoard> {
    const board = new StatusBoard(client, `${prefix}status/`, local, { publishMs: options.publishMs ?? 2_000, ttlSeconds: options.ttlSeconds ?? 10 });
    board.lease = client.lease(board.opts.ttlSeconds);
    board.lease.on("lost", () => {
      // A partition outlived the lease: take a new one (the next publish writes under it).
      board.lease = client.lease(board.opts.ttlSeconds);
    });
    await board.publish();
    board.timer = setInterval(() => void board.publish(), board.opts.publishMs);
    board.timer.unref();
    return board;
  }

  /** Writes this replica's summary when it changed (or every ttl/2, keeping it fresh). */
  async publish(): Promise<void> {
    const local = this.local();
    const value = JSON.stringify(local);
    const now = Date.now();
    if (value === this.last && now - this.lastAt < (this.opts.ttlSeconds * 1000) / 2) return;
    this.last = value;
    this.lastAt = now;
    const status: ReplicaStatus = { replica: this.replica, ...local, updatedAt: new Date(now).toISOString() };
    await this.lease!.put(`${this.prefix}${this.replica}`).value(JSON.stringify(status)).exec()
      .catch((e: Error) => console.error(`graylane status board: ${e.message}`));
  }

  /** Every live replica's summary (this one's as of now), by replica id. */
  async all(): Promise<ReplicaStatus[]> {
    const kvs = await this.client.getAll().prefix(this.prefix).strings();
    const out = new Map<string, ReplicaStatus>();
    for (const v of Object.values(kvs)) {
      const s = JSON.parse(v) as ReplicaStatus;
      out.set(s.replica, s);
    }
    out.set(this.replica, { replica: this.replica, ...this.local(), updatedAt: new Date().toISOString() });
    return [...out.values()].sort((a, b) => (a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : 0));
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.lease?.revoke().catch(() => undefined);
  }
}
