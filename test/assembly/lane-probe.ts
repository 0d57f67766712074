// Test-only entry: exports pure functions of filter/assembly/lane so unit tests can call them
// directly (built by make into filter/build/test/, tested by test/unit/lane-probe.test.ts; never shipped).
import { murmur3 } from "../../filter/assembly/lane/murmur3";
import { classifyUserAgent } from "../../filter/assembly/lane/useragent";

export function alloc(n: usize): usize { return heap.alloc(n); }
export function hash(ptr: usize, len: usize, seed: u32): u32 { return murmur3(ptr, len, seed); }
export function userAgent(ptr: usize, len: usize): u32 { return classifyUserAgent(ptr, len); }
