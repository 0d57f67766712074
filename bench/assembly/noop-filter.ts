// The do-nothing baseline of bench/filter-decision (in the Node host) and of bench/envoy-overhead
// configuration (c) (in Envoy): a proxy-wasm 0.2.1 module whose every hook continues, so a ratio
// against it isolates the cost of the lane decision from the cost of being a Wasm filter at all.
// AssemblyScript, built by bench/support/noop.ts (outside tsconfig: it is not Node TypeScript).
export function proxy_abi_version_0_2_1(): void {}
export function proxy_on_memory_allocate(size: usize): usize { return heap.alloc(size); }
export function proxy_on_context_create(contextId: u32, parentContextId: u32): void {}
export function proxy_on_vm_start(rootId: u32, size: u32): u32 { return 1; }
export function proxy_on_configure(rootId: u32, size: u32): u32 { return 1; }
export function proxy_on_request_headers(contextId: u32, headers: u32, endOfStream: u32): u32 { return 0; }
export function proxy_on_response_headers(contextId: u32, headers: u32, endOfStream: u32): u32 { return 0; }
export function proxy_on_done(contextId: u32): u32 { return 1; }
export function proxy_on_log(contextId: u32): void {}
export function proxy_on_delete(contextId: u32): void {}
