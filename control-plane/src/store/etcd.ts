// The Store on etcd, for several control-plane replicas (`--store etcd://HOST:PORT`).
//
// Keys (under a prefix, default /graylane/):
//   head            the latest revision number
//   rev/<n>         one committed revision: time, actor, op, diff, and the content it wrote per group
//                   (null = deleted), so the state at any revision is a replay of rev/1..n
// A write is one etcd transaction that succeeds only if `head` still holds the revision the write
// was validated against (compare-and-swap); a replica that loses the race catches up and validates
// again. Every replica mirrors rev/* through a watch that starts right after its initial read, so
// reads are local and synchronous, and change listeners (the rule push) fire on every replica for
// every revision, whichever replica wrote it. A write resolves once this replica's mirror holds it.
import { Etcd3 } from "etcd3";
import { type Follower, followPrefix } from "./etcd-follow.js";
import { storedLaneGroup, type LaneGroup } from "../model/lanegroup.js";
import { checkExpected, putChange, rollbackPlan, validateAmong, type Validation } from "./checks.js";
import {
  ConflictError, NotFoundError,
  type GroupChange, type ListRevisionsOptions, type PutResult, type Revision, type RevisionOp,
  type RevisionSummary, type Store, type StoredGroup, type WriteOptions,
} from "./types.js";

interface RevRow {
  n: number;
  time: string;
  actor: string;
  op: RevisionOp;
  grp: string | null;
  target?: number;
  diff: GroupChange[];
  /** Content each changed group has after this revision (null: deleted). */
  wrote: Record<string, LaneGroup | null>;
}

export interface EtcdStoreOptions {
  /** Key prefix (default "/graylane/"); tests give each run its own. */
  prefix?: string;
  now?: () => Date;
  /** How many times a write retries after losing a compare-and-swap race (default 20). */
  retries?: number;
}

const pad = (n: number) => String(n).padStart(12, "0");

export class EtcdStore implements Store {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly endpoint: string;
  private readonly now: () => Date;
  private readonly retries: number;
  private readonly listeners = new Set<(revision: number) => void>();
  private readonly revs = new Map<number, RevRow>();
  private readonly groups = new Map<string, StoredGroup>();
  /** Per group: [revision, content] in revision order. */
  private readonly history = new Map<string, Array<[number, LaneGroup | null]>>();
  private latest = 0;
  private pending: RevRow[] = [];
  private waiters: Array<{ n: number; resolve: () => void }> = [];
  private watcher: Follower | undefined;
  private closed = false;

  private constructor(endpoint: string, opts: EtcdStoreOptions) {
    this.endpoint = endpoint;
    this.client = new Etcd3({ hosts: endpoint, dialTimeout: 5000 });
    this.prefix = opts.prefix ?? "/graylane/";
    this.now = opts.now ?? (() => new Date());
    this.retries = opts.retries ?? 20;
  }

  /** `etcd://HOST:PORT` (or http://HOST:PORT): connects, reads every revision, starts the watch. */
  static async open(url: string, opts: EtcdStoreOptions = {}): Promise<EtcdStore> {
    const m = /^(?:etcd|http):\/\/([^/]+)\/?$/.exec(url);
    if (!m) throw new Error(`--store ${url}: want etcd://HOST:PORT`);
    const store = new EtcdStore(`http://${m[1]}`, opts);
    try {
      await store.load();
    } catch (e) {
      store.client.close();
      throw new Error(`--store ${url}: cannot reach etcd: ${(e as Error).message}`);
    }
    return store;
  }

  private async load(): Promise<void> {
    // Every revision, then a watch from right after the read (nothing committed in between is
    // missed; a lost watch reads again): apply() takes them in order, each once.
    this.watcher = await followPrefix(this.client, `${this.prefix}rev/`, (kv, initial) => this.apply(JSON.parse(kv.value.toString()) as RevRow, !initial), "etcd store");
  }

  /** Applies revisions strictly in order (a later one waits for its predecessors). */
  private apply(row: RevRow, notify: boolean): void {
    if (row.n <= this.latest) return;
    this.pending.push(row);
    this.pending.sort((a, b) => a.n - b.n);
    while (this.pending.length && this.pending[0]!.n === this.latest + 1) {
      const r = this.pending.shift()!;
      this.revs.set(r.n, r);
      for (const [name, body] of Object.entries(r.wrote)) {
        const h = this.history.get(name) ?? [];
        const g = body === null ? null : storedLaneGroup(body);
        h.push([r.n, g]);
        this.history.set(name, h);
        if (g === null) this.groups.delete(name);
        else this.groups.set(name, { name, revision: r.n, lanegroup: g });
      }
      this.latest = r.n;
      if (notify) {
        for (const l of [...this.listeners]) {
          try { l(r.n); } catch (e) { console.error("store listener failed:", e); }
        }
      }
    }
    const ready = this.waiters.filter((w) => w.n <= this.latest);
    this.waiters = this.waiters.filter((w) => w.n > this.latest);
    for (const w of ready) w.resolve();
  }

  /** Resolves once the mirror holds revision n. */
  private caughtUp(n: number, timeoutMs = 10_000): Promise<void> {
    if (n <= this.latest) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`etcd store: revision ${n} not seen within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ n, resolve: () => { clearTimeout(t); resolve(); } });
    });
  }

  // ---- RuleSource ----

  current(): { revision: number; groups: LaneGroup[] } {
    return { revision: this.latest, groups: this.list().map((g) => g.lanegroup) };
  }

  onChange(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  // ---- reads (from the mirror) ----

  list(): StoredGroup[] {
    return [...this.groups.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get(name: string): StoredGroup | undefined {
    return this.groups.get(name);
  }

  revisions(opts: ListRevisionsOptions = {}): RevisionSummary[] {
    const limit = Math.max(1, Math.min(opts.limit ?? 100, 1000));
    const out: RevisionSummary[] = [];
    for (let n = Math.min(this.latest, (opts.before ?? Infinity) - 1); n >= 1 && out.length < limit; n--) {
      const r = this.revs.get(n);
      if (!r) continue;
      if (opts.group !== undefined && !(opts.group in r.wrote)) continue;
      out.push(summary(r));
    }
    return out;
  }

  revision(n: number): Revision | undefined {
    const r = this.revs.get(n);
    if (!r) return undefined;
    return { ...summary(r), diff: r.diff, lanegroups: this.stateAt(n).map((g) => g.lanegroup) };
  }

  async ping(): Promise<boolean> {
    try {
      await this.client.get(`${this.prefix}head`).string();
      return true;
    } catch {
      return false;
    }
  }

  // ---- writes ----

  validate(input: unknown): Validation {
    return validateAmong(this.list(), input);
  }

  put(input: unknown, opts: WriteOptions): Promise<PutResult> {
    return this.write(() => {
      const { group, created, change } = putChange(this.list(), input, opts.expectedRevision);
      return {
        row: { actor: opts.actor, op: change.action, grp: group.name, diff: [change], wrote: { [group.name]: group } },
        result: (n: number): PutResult => ({ revision: n, created, group: { name: group.name, revision: n, lanegroup: group } }),
      };
    });
  }

  delete(name: string, opts: WriteOptions): Promise<{ revision: number }> {
    return this.write(() => {
      const before = this.get(name);
      if (!before) {
        if (opts.expectedRevision !== undefined && opts.expectedRevision !== 0) throw new ConflictError(opts.expectedRevision, 0, name);
        throw new NotFoundError(`lane group ${name} does not exist`);
      }
      checkExpected(name, before.revision, opts.expectedRevision);
      return {
        row: { actor: opts.actor, op: "delete", grp: name, diff: [{ group: name, action: "delete", patch: [{ op: "remove", path: "", old: before.lanegroup }] }], wrote: { [name]: null } },
        result: (n: number) => ({ revision: n }),
      };
    });
  }

  rollback(target: number, opts: { actor: string }): Promise<{ revision: number; groups: string[] }> {
    return this.write(() => {
      if (!Number.isInteger(target) || !this.revs.has(target)) throw new NotFoundError(`revision ${target} does not exist`, "/revision");
      const { wanted, changes } = rollbackPlan(this.list(), this.stateAt(target));
      const wrote: Record<string, LaneGroup | null> = {};
      for (const c of changes) wrote[c.group] = wanted.get(c.group) ?? null;
      return {
        row: { actor: opts.actor, op: "rollback", grp: null, target, diff: changes, wrote },
        result: (n: number) => ({ revision: n, groups: changes.map((c) => c.group) }),
      };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.watcher?.cancel().catch(() => undefined);
    this.client.close();
  }

  // ---- internals ----

  /**
   * Validates against the mirror, then commits rev/<n+1> and head = n+1 only if head is still n.
   * Losing the race means another replica wrote first: wait for its revision, validate again.
   */
  private async write<T extends { revision: number }>(
    plan: () => { row: Omit<RevRow, "n" | "time">; result: (n: number) => T },
  ): Promise<T> {
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      const base = this.latest;
      const { row, result } = plan(); // throws validation / precondition errors as is
      const n = base + 1;
      const full: RevRow = { n, time: this.now().toISOString(), ...row };
      const head = `${this.prefix}head`;
      const txn = base === 0 ? this.client.if(head, "Create", "==", 0) : this.client.if(head, "Value", "==", String(base));
      const res = await txn.then(this.client.put(head).value(String(n)), this.client.put(`${this.prefix}rev/${pad(n)}`).value(JSON.stringify(full))).commit();
      if (res.succeeded) {
        await this.caughtUp(n);
        return result(n);
      }
      const actual = Number(await this.client.get(head).string());
      await this.caughtUp(actual);
    }
    throw new Error(`etcd store: gave up after ${this.retries} concurrent-write retries`);
  }

  private stateAt(n: number): StoredGroup[] {
    const out: StoredGroup[] = [];
    for (const [name, h] of this.history) {
      let last: [number, LaneGroup | null] | undefined;
      for (const e of h) if (e[0] <= n) last = e;
      if (last && last[1] !== null) out.push({ name, revision: last[0], lanegroup: last[1] });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}

function summary(r: RevRow): RevisionSummary {
  const s: RevisionSummary = { revision: r.n, time: r.time, actor: r.actor, op: r.op, group: r.grp, groups: r.diff.map((c) => c.group) };
  if (r.target !== undefined) s.target = r.target;
  return s;
}
