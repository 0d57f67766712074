// One VM's stream of pseudo-random 64-bit values (splitmix64), advanced with clock readings the
// caller already has: generated sticky ids, trace ids made at the edge, reconnect jitter, instance ids.
// Not cryptographic: ids need to be distinct, not unguessable.

export function splitmix64(x: u64): u64 {
  let z = x + 0x9e3779b97f4a7c15;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

export class Entropy {
  state: u64 = 0;

  seed(x: u64): void { this.state = splitmix64(x); }

  /** Advances the state with `nanos` (a time the caller read) and returns it. */
  @inline mix(nanos: u64): u64 {
    this.state = splitmix64(this.state ^ nanos);
    return this.state;
  }

  /** The next value, with no new input (the second and later words of one id). */
  @inline next(): u64 {
    this.state = splitmix64(this.state);
    return this.state;
  }
}
