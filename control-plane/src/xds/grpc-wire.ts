// gRPC over HTTP/2, the wire parts (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
// length-prefixed messages, status codes and the grpc-message encoding. Shared by the server
// (grpc-server.ts) and the bench's simulated filters, which speak it without a gRPC library.

/** The status codes this project sends (numeric values from the gRPC spec). */
export const Status = {
  OK: 0,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The largest message read (gRPC's default receive limit). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/** A length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** grpc-message: percent-encoded outside printable ASCII (and '%' itself). */
export function encodeGrpcMessage(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

export class FrameError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

/**
 * Splits a stream's DATA chunks into messages. A chunk usually holds whole messages, handed on as
 * views without a copy; a message split across chunks is gathered first. Compressed messages (none
 * are negotiated) and messages over `maxBytes` throw a FrameError.
 */
export class MessageReader {
  private pending: Buffer | undefined;

  constructor(private readonly onMessage: (message: Buffer) => void, private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer): void {
    const b = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let i = 0;
    while (b.length - i >= 5) {
      if (b[i] !== 0) throw new FrameError(Status.UNIMPLEMENTED, "compressed messages are not supported (no grpc-encoding is negotiated)");
      const len = b.readUInt32BE(i + 1);
      if (len > this.maxBytes) throw new FrameError(Status.RESOURCE_EXHAUSTED, `message of ${len} bytes is larger than ${this.maxBytes}`);
      if (b.length - i - 5 < len) break;
      this.onMessage(b.subarray(i + 5, i + 5 + len));
      i += 5 + len;
    }
    if (i < b.length) this.pending = Buffer.from(b.subarray(i));
  }
}
