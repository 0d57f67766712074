// gRPC responses in the real filter's counters: a gRPC request (content-type application/grpc) is
// counted by its grpc-status (headers, trailers-only, or trailers), classed as Envoy maps the status
// to HTTP, so a canary answering UNAVAILABLE with HTTP 200 counts as a server error. Every other
// request keeps its counter key and pays no extra host call.
import { describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { TrafficReportSchema, type TrafficCounter } from "../../control-plane/src/generated/graylane/v1/traffic_pb.js";
import { callTotals } from "../../control-plane/src/wasmhost/index.js";
import { mockGroup, newFilter, routeTo } from "../support/filter.js";

const GRPC_REQ = { ":method": "POST", ":path": "/mock.Echo/Call", ":authority": "mocka", "content-type": "application/grpc", "x-asm-prefer-tag": "canary" };

type Response = { headers: Array<[string, string]>; endOfStream?: boolean; trailers?: Array<[string, string]> };

/** Runs exchanges through one filter and returns its first traffic report's counters. */
async function countersOf(exchanges: Array<{ request?: Record<string, string>; response?: Response }>, countCalls = false) {
  const calls: Array<{ message: Uint8Array }> = [];
  const f = await newFilter({ groups: [mockGroup()], config: { cluster: "graylane", reportIntervalMs: 1000, node: { id: "n" } }, grpc: { onCall: (c: never) => calls.push(c) }, countCalls });
  for (const x of exchanges) {
    const s = f.send(x.request ?? GRPC_REQ, routeTo("mocka"));
    if (x.response) {
      s.callOnResponseHeaders(x.response.headers, x.response.endOfStream ?? false);
      if (x.response.trailers) s.callOnResponseTrailers(x.response.trailers);
    }
    s.complete();
  }
  const snap = f.vm.calls?.snapshot();
  f.vm.tick();
  const counters = fromBinary(TrafficReportSchema, calls[0]!.message).counters;
  return { counters, snap };
}

const summary = (cs: TrafficCounter[]) =>
  cs.map((c) => `${c.lane} ${c.statusClass} ${c.grpcStatus === undefined ? "-" : c.grpcStatus} ${c.requests}`).sort();

const ok200 = (trailers: Array<[string, string]>): Response => ({ headers: [[":status", "200"], ["content-type", "application/grpc"]], trailers });

describe("gRPC status in the counters", () => {
  it("grpc-status from the trailers: OK a success, UNAVAILABLE a server error, NOT_FOUND a caller's error", async () => {
    const { counters } = await countersOf([
      ...Array.from({ length: 7 }, () => ({ response: ok200([["grpc-status", "0"]]) })),
      ...Array.from({ length: 3 }, () => ({ response: ok200([["grpc-status", "14"], ["grpc-message", "down"]]) })),
      { response: ok200([["grpc-status", "5"]]) },
    ]);
    expect(summary(counters)).toEqual(["canary 2 0 7", "canary 4 5 1", "canary 5 14 3"]);
  });

  it("every code classed as Envoy maps it to HTTP; unknown or malformed statuses are UNKNOWN", async () => {
    // Envoy's Grpc::Utility::grpcToHttpStatus, code 0..16.
    const http = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];
    const { counters } = await countersOf([
      ...http.map((_, code) => ({ response: ok200([["grpc-status", String(code)]]) })),
      { response: ok200([["grpc-status", "17"]]) },
      { response: ok200([["grpc-status", "x"]]) },
      { response: ok200([["grpc-status", ""]]) },
    ]);
    for (const [code, status] of http.entries()) {
      const c = counters.find((x) => x.grpcStatus === code)!;
      expect([code, c.statusClass, c.requests]).toEqual([code, Math.floor(status / 100), code === 2 ? 4n : 1n]);
    }
  });

  it("trailers-only responses (grpc-status in the headers), a missing status, an HTTP error, a reset", async () => {
    const { counters } = await countersOf([
      { response: { headers: [[":status", "200"], ["grpc-status", "14"]], endOfStream: true } }, // Envoy's own UNAVAILABLE
      { response: { headers: [[":status", "200"], ["grpc-status", "0"]], endOfStream: true } },
      { response: { headers: [[":status", "200"]], endOfStream: true } }, // no status anywhere: UNKNOWN
      { response: { headers: [[":status", "503"]], endOfStream: true } }, // HTTP error without grpc-status: UNAVAILABLE, class 5
      { response: { headers: [[":status", "404"]], endOfStream: true } }, // UNIMPLEMENTED by the gRPC spec, the class stays 4
      { response: { headers: [[":status", "200"]] } }, // headers, then the stream ends without trailers: UNKNOWN
      { response: ok200([["grpc-message", "no status"]]) }, // trailers without grpc-status: UNKNOWN
      {}, // no response at all: class 0, no gRPC status
    ]);
    expect(summary(counters)).toEqual(["canary 0 - 1", "canary 2 0 1", "canary 4 12 1", "canary 5 14 2", "canary 5 2 3"]);
  });

  it("content types: application/grpc, +proto, ;charset are gRPC; grpc-web and others are not", async () => {
    const req = (ct: string) => ({ request: { ...GRPC_REQ, "content-type": ct }, response: ok200([["grpc-status", "13"]]) });
    const { counters } = await countersOf([req("application/grpc+proto"), req("Application/GRPC;x=1"), req("application/grpc-web"), req("application/json")]);
    expect(summary(counters)).toEqual(["canary 2 - 2", "canary 5 13 2"]);
  });

  it("an HTTP request keeps its counter (no gRPC status) even with trailers, and makes no host call for them", async () => {
    const http = { ...GRPC_REQ, "content-type": "text/plain" };
    const { counters, snap } = await countersOf([{ request: http, response: ok200([["grpc-status", "14"]]) }], true);
    expect(summary(counters)).toEqual(["canary 2 - 1"]);
    expect(snap!.proxy_on_response_trailers?.host ?? {}).toEqual({});
    expect(snap!.proxy_on_response_headers!.host).toEqual({ proxy_get_current_time_nanoseconds: 1, proxy_get_header_map_value: 1 });
  });

  it("a gRPC request pays one header lookup more on the response, and one in the trailer hook", async () => {
    const { snap } = await countersOf([{ response: ok200([["grpc-status", "0"]]) }], true);
    expect(snap!.proxy_on_response_headers!.host).toEqual({ proxy_get_current_time_nanoseconds: 1, proxy_get_header_map_value: 2 });
    expect(snap!.proxy_on_response_trailers!.host).toEqual({ proxy_get_header_map_value: 1 });
    expect(callTotals({ proxy_on_response_trailers: snap!.proxy_on_response_trailers! }).hooks).toBe(1);
  });
});
