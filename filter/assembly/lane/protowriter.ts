// A minimal protobuf encoder into a reusable Scratch buffer, for the messages the filter sends
// (traffic reports). Nested messages reserve a 5-byte length and patch it (non-minimal varint
// padding is valid protobuf), so nothing is sized twice.
import { Scratch } from "./bytes";

export class ProtoWriter {
  constructor(public out: Scratch) {}

  raw(v: u64): void {
    while (v >= 0x80) {
      this.out.pushByte(<u32>(v & 0x7f) | 0x80);
      v >>= 7;
    }
    this.out.pushByte(<u32>v);
  }

  varint(field: u32, v: u64): void {
    this.raw(<u64>(field << 3));
    this.raw(v);
  }

  bytes(field: u32, b: Uint8Array): void {
    this.raw(<u64>((field << 3) | 2));
    this.raw(<u64>b.byteLength);
    this.out.pushBytes(b);
  }

  /** Starts a length-delimited submessage; returns the offset to pass to end(). */
  begin(field: u32): usize {
    this.raw(<u64>((field << 3) | 2));
    this.out.reserve(5);
    const at = this.out.len;
    this.out.len += 5;
    return at;
  }

  end(at: usize): void {
    let n = <u32>(this.out.len - at - 5);
    const p = this.out.ptr + at;
    for (let i = 0; i < 4; i++) {
      store<u8>(p + <usize>i, <u8>((n & 0x7f) | 0x80));
      n >>= 7;
    }
    store<u8>(p + 4, <u8>(n & 0x7f));
  }
}
