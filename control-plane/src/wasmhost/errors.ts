// Errors the host raises to its callers.

/**
 * The module trapped (WebAssembly.RuntimeError: unreachable, out-of-bounds access, an
 * AssemblyScript abort, stack overflow) inside `exportName`. As in Envoy, the VM is unusable
 * afterwards: it is marked failed and every later call throws VmFailedError.
 */
export class WasmTrapError extends Error {
  constructor(
    readonly exportName: string,
    /** The engine's message, e.g. "unreachable". */
    readonly trapMessage: string,
    /** Critical-level messages the module logged during the call (an abort routed to proxy_log). */
    readonly abortMessages: string[] = [],
    options?: { cause?: unknown },
  ) {
    super(
      `wasm trap in ${exportName}: ${trapMessage}` + (abortMessages.length ? ` (${abortMessages.join("; ")})` : ""),
      options,
    );
    this.name = "WasmTrapError";
  }
}

/** A call into a VM that failed earlier. */
export class VmFailedError extends Error {
  constructor(
    readonly exportName: string,
    readonly reason: Error,
  ) {
    super(`wasm VM failed earlier (${reason.message}); refusing to call ${exportName}`, { cause: reason });
    this.name = "VmFailedError";
  }
}
