// The contexts of one VM by id (its root context and its HTTP streams, numbered from 1 in creation
// order), and the effective one: the context the current call into the module runs for, which the
// module may switch with proxy_set_effective_context until that call returns.
import type { HttpStream } from "./http-stream.js";

/** The root context (the plugin's configuration context). */
export class RootContext {
  readonly kind = "root";
  constructor(readonly id: number) {}
}

export type Context = RootContext | HttpStream;

export class ContextTable {
  private readonly byId = new Map<number, Context>();
  private lastId = 0;
  /** The effective context; undefined outside calls into the module. */
  current: Context | undefined;

  nextId(): number {
    return ++this.lastId;
  }

  add(ctx: Context): void {
    this.byId.set(ctx.id, ctx);
  }

  get(id: number): Context | undefined {
    return this.byId.get(id);
  }

  delete(id: number): void {
    this.byId.delete(id);
  }

  /** The effective context when it is an HTTP stream. */
  get stream(): HttpStream | undefined {
    return this.current?.kind === "http" ? this.current : undefined;
  }

  /** proxy_set_effective_context; false when no context has that id. */
  setEffective(id: number): boolean {
    const ctx = this.byId.get(id);
    if (!ctx) return false;
    this.current = ctx;
    return true;
  }
}
