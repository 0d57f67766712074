// What the bench's simulated filters read of a RuleResponse, by hand (no protobuf runtime on their
// hot path); the gRPC framing is the control plane's own (xds/grpc-wire.ts).
export { grpcFrame, MessageReader } from "../../control-plane/src/xds/grpc-wire.js";

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
