// Context objects the export dispatchers route to. The plugin subclasses them; this folder knows
// nothing of lanes.

export class RootContext {
  constructor(public id: u32) {}
  onVmStart(vmConfigSize: u32): bool { return true; }
  onConfigure(pluginConfigSize: u32): bool { return true; }
  onTick(): void {}
  onQueueReady(queueId: u32): void {}
  onGrpcReceiveInitialMetadata(token: u32, headers: u32): void {}
  onGrpcReceive(token: u32, size: u32): void {}
  onGrpcReceiveTrailingMetadata(token: u32, trailers: u32): void {}
  onGrpcClose(token: u32, statusCode: u32): void {}
  onHttpCallResponse(token: u32, headers: u32, bodySize: u32, trailers: u32): void {}
  onForeignFunction(functionId: u32, dataSize: u32): void {}
  onDone(): bool { return true; }
  onDelete(): void {}
  /** Returns the context for a new stream (objects may be pooled and reused). */
  newHttpContext(id: u32): HttpContext { return new HttpContext(id); }
}

export class HttpContext {
  constructor(public id: u32) {}
  onRequestHeaders(headers: u32, endOfStream: bool): u32 { return 0; }
  onRequestBody(size: u32, endOfStream: bool): u32 { return 0; }
  onRequestTrailers(trailers: u32): u32 { return 0; }
  onResponseHeaders(headers: u32, endOfStream: bool): u32 { return 0; }
  onResponseBody(size: u32, endOfStream: bool): u32 { return 0; }
  onResponseTrailers(trailers: u32): u32 { return 0; }
  onLog(): void {}
  onDone(): bool { return true; }
  /** After this the context id is never used again; the object may go back to a pool. */
  onDelete(): void {}
}

// The plugin registers how root contexts are made (a plain function: AssemblyScript has no closures).
let rootFactory: (id: u32) => RootContext = (id: u32): RootContext => new RootContext(id);
export function setRootContextFactory(factory: (id: u32) => RootContext): void {
  rootFactory = factory;
}

/** Root contexts: a handful per VM (one per plugin configuration), so a list is enough. */
export const roots = new Array<RootContext>();

export function rootById(id: u32): RootContext | null {
  for (let i = 0; i < roots.length; i++) if (unchecked(roots[i]).id == id) return unchecked(roots[i]);
  return null;
}

/**
 * Live stream contexts by id: open addressing with linear probing and backward-shift deletion,
 * grown by doubling. Ids only grow, so slots spread evenly.
 */
class StreamTable {
  private keys: StaticArray<u32> = new StaticArray<u32>(64);
  private vals: StaticArray<HttpContext | null> = new StaticArray<HttpContext | null>(64);
  private size: i32 = 0;

  get(id: u32): HttpContext | null {
    const mask = <u32>this.keys.length - 1;
    let i = id & mask;
    while (true) {
      const k = unchecked(this.keys[i]);
      if (k == id) return unchecked(this.vals[i]);
      if (k == 0) return null;
      i = (i + 1) & mask;
    }
    return null;
  }

  set(id: u32, ctx: HttpContext): void {
    if ((this.size + 1) * 4 > this.keys.length * 3) this.grow();
    const mask = <u32>this.keys.length - 1;
    let i = id & mask;
    while (unchecked(this.keys[i]) != 0 && unchecked(this.keys[i]) != id) i = (i + 1) & mask;
    if (unchecked(this.keys[i]) == 0) this.size++;
    unchecked(this.keys[i] = id);
    unchecked(this.vals[i] = ctx);
  }

  delete(id: u32): void {
    const mask = <u32>this.keys.length - 1;
    let i = id & mask;
    while (unchecked(this.keys[i]) != id) {
      if (unchecked(this.keys[i]) == 0) return;
      i = (i + 1) & mask;
    }
    // Backward-shift: pull later entries of the probe run into the hole.
    let j = i;
    while (true) {
      j = (j + 1) & mask;
      const k = unchecked(this.keys[j]);
      if (k == 0) break;
      const home = k & mask;
      if (((j - home) & mask) >= ((j - i) & mask)) {
        unchecked(this.keys[i] = k);
        unchecked(this.vals[i] = unchecked(this.vals[j]));
        i = j;
      }
    }
    unchecked(this.keys[i] = 0);
    unchecked(this.vals[i] = null);
    this.size--;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    const cap = oldKeys.length << 1;
    this.keys = new StaticArray<u32>(cap);
    this.vals = new StaticArray<HttpContext | null>(cap);
    this.size = 0;
    for (let i = 0; i < oldKeys.length; i++) {
      const k = unchecked(oldKeys[i]);
      if (k != 0) this.set(k, unchecked(oldVals[i])!);
    }
  }
}

export const streams = new StreamTable();

export function createContext(id: u32, parentId: u32): void {
  if (parentId == 0) {
    if (rootById(id) == null) roots.push(rootFactory(id));
    return;
  }
  const root = rootById(parentId);
  if (root != null) streams.set(id, root.newHttpContext(id));
}
