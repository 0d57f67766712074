// Host calls and hook crossings counted per hook, the currency of a Wasm filter's cost in Envoy:
// every exported hook the host calls is one crossing into the module, every host function one
// crossing out, and a host call that returns data crosses back in (proxy_on_memory_allocate) to
// get memory for it. Opt-in (VmOptions.countCalls), so the tests that pin these counts pay for it
// and the benchmarks do not.

/** What one hook did, summed over its invocations. */
export interface HookCalls {
  invocations: number;
  /** Host functions called while it ran, by name. */
  host: Record<string, number>;
  /** Calls from the host back into the module while it ran (memory allocation), by export name. */
  intoModule: Record<string, number>;
}

export class CallCounter {
  private current: HookCalls | undefined;
  private hooks = new Map<string, HookCalls>();

  /** The host invokes export `hook`. */
  enter(hook: string): void {
    let h = this.hooks.get(hook);
    if (!h) this.hooks.set(hook, (h = { invocations: 0, host: {}, intoModule: {} }));
    h.invocations++;
    this.current = h;
  }

  leave(): void {
    this.current = undefined;
  }

  /** The module called host function `name` (outside any hook, e.g. from _initialize: not counted). */
  host(name: string): void {
    if (this.current) this.current.host[name] = (this.current.host[name] ?? 0) + 1;
  }

  /** The host called back into the module (export `name`) during the current hook. */
  intoModule(name: string): void {
    if (this.current) this.current.intoModule[name] = (this.current.intoModule[name] ?? 0) + 1;
  }

  /** A copy of the counts, by hook. */
  snapshot(): Record<string, HookCalls> {
    const out: Record<string, HookCalls> = {};
    for (const [k, h] of this.hooks) out[k] = { invocations: h.invocations, host: { ...h.host }, intoModule: { ...h.intoModule } };
    return out;
  }

  reset(): void {
    this.hooks = new Map();
    this.current = undefined;
  }
}

/** Totals of a snapshot: hooks invoked, host calls, calls back into the module. */
export function callTotals(s: Record<string, HookCalls>): { hooks: number; host: number; intoModule: number } {
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  let hooks = 0, host = 0, intoModule = 0;
  for (const h of Object.values(s)) { hooks += h.invocations; host += sum(h.host); intoModule += sum(h.intoModule); }
  return { hooks, host, intoModule };
}
