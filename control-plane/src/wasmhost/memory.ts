// Access to the module's linear memory from host functions, and the ABI's way of handing data to
// the module: allocate in the guest with proxy_on_memory_allocate, copy, write (ptr, size).
//
// The module's memory can grow during any call into it (proxy_on_memory_allocate included), which
// detaches the old ArrayBuffer: the Uint8Array / DataView over it are cached and rebuilt only when
// `memory.buffer` is a different object.
import { type Bytes } from "./bytes.js";

/** Thrown by accessors for out-of-bounds pointers; host functions turn it into InvalidMemoryAccess. */
export class MemoryAccessError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MemoryAccessError";
  }
}

export class GuestMemory {
  private buf: ArrayBuffer;
  private u8: Uint8Array;
  private dv: DataView;

  constructor(
    readonly memory: WebAssembly.Memory,
    /** The module's proxy_on_memory_allocate (undefined when it does not export one). */
    private readonly allocate: ((size: number) => number) | undefined,
  ) {
    this.buf = memory.buffer;
    this.u8 = new Uint8Array(this.buf);
    this.dv = new DataView(this.buf);
  }

  /** The current views, rebuilt when the memory grew since the last access. */
  private refresh(): void {
    const b = this.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.u8 = new Uint8Array(b);
      this.dv = new DataView(b);
    }
  }

  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  // Pointers and sizes arrive as (signed) i32 values: every accessor reads them as u32.
  private check(ptr: number, len: number): void {
    this.refresh();
    if ((ptr >>> 0) + (len >>> 0) > this.u8.length) {
      throw new MemoryAccessError(`guest memory access [${ptr >>> 0}, +${len >>> 0}) out of bounds`);
    }
  }

  /** A live view: valid only until the next call into the module. */
  view(ptr: number, len: number): Bytes {
    if (len === 0) return new Uint8Array(0);
    this.check(ptr, len);
    return this.u8.subarray(ptr >>> 0, (ptr >>> 0) + (len >>> 0));
  }

  /** A copy, safe to keep. */
  read(ptr: number, len: number): Bytes {
    if (len === 0) return new Uint8Array(0);
    this.check(ptr, len);
    return this.u8.slice(ptr >>> 0, (ptr >>> 0) + (len >>> 0));
  }

  writeU32(ptr: number, v: number): void {
    this.check(ptr, 4);
    this.dv.setUint32(ptr >>> 0, v >>> 0, true);
  }

  writeU64(ptr: number, v: bigint): void {
    this.check(ptr, 8);
    this.dv.setBigUint64(ptr >>> 0, BigInt.asUintN(64, v), true);
  }

  readU32(ptr: number): number {
    this.check(ptr, 4);
    return this.dv.getUint32(ptr >>> 0, true);
  }

  /**
   * Copies `data` into a block the module allocates and writes its pointer and size (u32 LE) at
   * retPtrPtr / retSizePtr. The module owns (and frees) the block.
   *
   * Empty data: nothing is allocated and (0, 0) is written, so there is nothing to free. (Envoy
   * leaves the out-parameters untouched for an empty buffer read; writing zeros is the defined
   * version of that.)
   */
  returnBytes(retPtrPtr: number, retSizePtr: number, data: Bytes): void {
    // Check the out-parameters first so a bad pointer does not leak a guest allocation.
    this.check(retPtrPtr, 4);
    this.check(retSizePtr, 4);
    if (data.length === 0) {
      this.writeU32(retPtrPtr, 0);
      this.writeU32(retSizePtr, 0);
      return;
    }
    if (!this.allocate) throw new MemoryAccessError("module does not export proxy_on_memory_allocate");
    const ptr = this.allocate(data.length) >>> 0;
    if (ptr === 0) throw new MemoryAccessError(`proxy_on_memory_allocate(${data.length}) returned 0`);
    this.check(ptr, data.length); // refreshes the views: allocating may have grown the memory
    this.u8.set(data, ptr);
    this.writeU32(retPtrPtr, ptr);
    this.writeU32(retSizePtr, data.length);
  }
}
