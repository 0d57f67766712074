// Where data the host returns during a stream hook lives: a fixed region taken from the front
// again at every stream hook's entry, instead of one heap.alloc and heap.free per returned block
// (header pairs, route metadata, :status, shared data: four per request, the allocator was ~11% of
// the filter's own time). Blocks returned in stream hooks never outlive the hook (the filter
// copies what it keeps); root-context hooks (configuration, rule stream, ticks) and anything larger
// than the space left get heap blocks as before. release() frees only heap blocks.
const CAPACITY: usize = 64 * 1024;
const base: usize = heap.alloc(CAPACITY);
let top: usize = 0;
let open: bool = false;

/** A stream hook starts: the region is empty and takes the host's blocks until end(). */
@inline export function begin(): void {
  top = 0;
  open = true;
}

@inline export function end(): void {
  open = false;
}

export function allocate(size: usize): usize {
  if (open) {
    const at = (top + 7) & ~<usize>7;
    if (at <= CAPACITY && size <= CAPACITY - at) {
      top = at + size;
      return base + at;
    }
  }
  return heap.alloc(size);
}

/** Frees a block the host returned, unless it lives in the region. */
export function release(ptr: usize): void {
  if (ptr - base >= CAPACITY) heap.free(ptr); // unsigned: below base wraps around too
}
