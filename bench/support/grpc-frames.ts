// gRPC message framing and the few protobuf fields the bench's simulated filters and the floor
// server read or write by hand (no protobuf runtime on their hot path).

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}

/** A length-delimited protobuf field (a string, bytes or an embedded message). */
export function pbString(field: number, value: string | Uint8Array): Buffer {
  const b = typeof value === "string" ? Buffer.from(value) : value;
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(b.length)]), b]);
}

/** A varint protobuf field. */
export function pbVarint(field: number, value: number): Buffer {
  return Buffer.from([...varint(field << 3), ...varint(value)]);
}

/** Fields 1 (version) and 2 (nonce) of a RuleResponse; every other field skipped unread. */
export function versionAndNonce(b: Uint8Array): { version: string; nonce: string } {
  let i = 0;
  let version = "";
  let nonce = "";
  const vi = () => {
    let v = 0;
    let shift = 0;
    let x: number;
    do { x = b[i++]!; v += (x & 0x7f) * 2 ** shift; shift += 7; } while (x & 0x80);
    return v;
  };
  const text = (from: number, to: number) => Buffer.from(b.buffer, b.byteOffset + from, to - from).toString("latin1");
  while (i < b.length) {
    const tag = vi();
    const wire = tag & 7;
    if (wire === 0) vi();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = vi();
      if (tag >>> 3 === 1) version = text(i, i + len);
      else if (tag >>> 3 === 2) nonce = text(i, i + len);
      i += len;
    } else throw new Error(`RuleResponse: wire type ${wire}`);
  }
  return { version, nonce };
}

/**
 * Splits a stream's DATA chunks into gRPC messages. A chunk usually holds whole messages, which are
 * handed on as views without a copy; a message split across chunks is gathered first.
 */
export class MessageReader {
  private pending: Buffer | undefined;

  constructor(private readonly onMessage: (message: Buffer) => void) {}

  push(chunk: Buffer): void {
    let b = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let i = 0;
    while (b.length - i >= 5) {
      const len = b.readUInt32BE(i + 1);
      if (b.length - i - 5 < len) break;
      this.onMessage(b.subarray(i + 5, i + 5 + len));
      i += 5 + len;
    }
    if (i < b.length) this.pending = Buffer.from(b.subarray(i));
  }
}
