// Weighted users through the demo gateway, for the e2e suites that count lanes end to end.

/** GET /mock at `gatewayUrl` as a user: x-user-id only, no trace header; the answer's chain. */
export async function asUser(gatewayUrl: string, id: string): Promise<string> {
  const res = await fetch(`${gatewayUrl}/mock`, { headers: { "x-user-id": id } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${res.status}: ${body}`);
  return body;
}

/** f(0) … f(n-1), at most `width` at a time; results in index order. */
export async function pool<T>(n: number, width: number, f: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < n) { const i = next++; out[i] = await f(i); } }));
  return out;
}
