// A rule-stream subscriber that ACKs every RuleSet it gets, as a filter does; `got` holds them in order.
import { create } from "@bufbuild/protobuf";
import { RuleRequestSchema, type RuleResponse } from "../../control-plane/src/generated/graylane/v1/discovery_pb.js";
import { GraylaneClient } from "../../control-plane/src/xds/index.js";

export function ackingSubscriber(grpcPort: number, id: string): { got: RuleResponse[]; close(): void } {
  const client = new GraylaneClient(`127.0.0.1:${grpcPort}`);
  const got: RuleResponse[] = [];
  const stream = client.streamRules();
  stream.on("data", (r: RuleResponse) => {
    got.push(r);
    stream.write(create(RuleRequestSchema, { instanceId: id, versionInfo: r.version, responseNonce: r.nonce }));
  });
  stream.on("error", () => {});
  stream.write(create(RuleRequestSchema, { node: { id }, instanceId: id }));
  return { got, close: () => client.close() };
}
