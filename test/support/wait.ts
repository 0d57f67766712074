// Polling for what a real server makes true a little later (a watch, a CRD's endpoint, a push).

/** Polls fn until it answers something truthy; fails naming `what` after ms. */
export async function until<T>(what: string, fn: () => T | Promise<T>, ms = 20_000, everyMs = 10): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls fn until ok(answer); fails naming `what` and the last answer after ms. */
export async function untilOk<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what}: not in ${ms} ms; last answer ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
