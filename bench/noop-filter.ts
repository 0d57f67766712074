// Baseline for bench/filter-decision: a proxy-wasm module that does nothing (every hook continues),
// run in the same host, so the ratio isolates the cost of the lane decision itself.
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
