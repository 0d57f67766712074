// The time proxy_get_current_time_nanoseconds reports: wall-clock nanoseconds since the Unix epoch.

export interface Clock {
  nowNs(): bigint;
}

/**
 * Real wall clock with nanosecond resolution: Date.now() anchors the epoch once, and
 * process.hrtime (monotonic) supplies the progress, so readings never go backwards.
 */
export class RealClock implements Clock {
  private readonly epochNs = BigInt(Date.now()) * 1_000_000n;
  private readonly hr0 = process.hrtime.bigint();

  nowNs(): bigint {
    return this.epochNs + (process.hrtime.bigint() - this.hr0);
  }
}

/** A clock that only moves when told to: deterministic tests. */
export class ManualClock implements Clock {
  private ns: bigint;

  /** `startNs`: nanoseconds since the Unix epoch (a number is taken as whole nanoseconds too). */
  constructor(startNs: bigint | number = 1_700_000_000_000_000_000n) {
    this.ns = BigInt(startNs);
  }

  nowNs(): bigint {
    return this.ns;
  }

  nowMs(): number {
    return Number(this.ns / 1_000_000n);
  }

  advanceNs(ns: bigint | number): void {
    this.ns += BigInt(ns);
  }

  /** Fractions of a millisecond are kept (to the nanosecond). */
  advanceMs(ms: number): void {
    this.ns += BigInt(Math.round(ms * 1_000_000));
  }

  set(ns: bigint): void {
    this.ns = ns;
  }
}
