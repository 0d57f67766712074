// gRPC responses in the counters (pure). A gRPC failure comes back as HTTP 200 with a non-zero
// `grpc-status`, in the response headers (trailers-only) or in the trailers; counted by :status it
// would be a success. A gRPC request is known by its content-type (application/grpc, +proto, ;...),
// read from the request the filter already holds, so only gRPC streams read anything more.
//
// The status class of a gRPC response is that of Envoy's gRPC → HTTP mapping
// (Grpc::Utility::grpcToHttpStatus), so a 5xx-based analysis fails a canary answering UNAVAILABLE:
// UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS are 5xx; CANCELLED
// (499) and the caller's errors (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED,
// RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNAUTHENTICATED) 4xx; OK 2xx.

export const GRPC_UNKNOWN: u32 = 2;
export const GRPC_INTERNAL: u32 = 13;
export const GRPC_MAX_CODE: u32 = 16;

// Status class per code 0..16 (Envoy: 200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401).
const CLASS: StaticArray<u8> = [2, 4, 5, 4, 5, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 4];

/** The status class (HTTP status / 100) Envoy's mapping gives gRPC status `code` (0..16). */
export function grpcStatusClass(code: u32): u32 {
  return code <= GRPC_MAX_CODE ? <u32>unchecked(CLASS[code]) : 5;
}

/**
 * A `grpc-status` value: decimal 0..16, else UNKNOWN (the gRPC spec: a client treats a status it
 * does not know as UNKNOWN; Envoy maps an unparsable one to 500 too).
 */
export function parseGrpcStatus(p: usize, l: usize): u32 {
  if (l == 0 || l > 2) return GRPC_UNKNOWN;
  let v: u32 = 0;
  for (let i: usize = 0; i < l; i++) {
    const c = <u32>load<u8>(p + i) - 48;
    if (c > 9) return GRPC_UNKNOWN;
    v = v * 10 + c;
  }
  return v <= GRPC_MAX_CODE ? v : GRPC_UNKNOWN;
}

/**
 * The gRPC status a client sees for a gRPC request answered with HTTP `status` other than 200 and
 * no grpc-status (the gRPC spec's HTTP → gRPC table): 400 INTERNAL, 401 UNAUTHENTICATED,
 * 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE, anything else UNKNOWN.
 */
export function grpcFromHttp(status: u32): u32 {
  if (status == 400) return GRPC_INTERNAL;
  if (status == 401) return 16;
  if (status == 403) return 7;
  if (status == 404) return 12;
  if (status == 429 || status == 502 || status == 503 || status == 504) return 14;
  return GRPC_UNKNOWN;
}

// "application/grpc", lower case.
const GRPC_TYPE: StaticArray<u8> = [97, 112, 112, 108, 105, 99, 97, 116, 105, 111, 110, 47, 103, 114, 112, 99];

/** Whether a content-type value is gRPC's: application/grpc, alone or followed by '+' or ';' (ASCII case ignored). */
export function isGrpcContentType(p: usize, l: usize): bool {
  const n = <usize>GRPC_TYPE.length;
  if (l < n) return false;
  for (let i: usize = 0; i < n; i++) {
    // | 0x20 folds ASCII upper case onto lower case and leaves '/' (0x2f) as it is.
    if ((<u32>load<u8>(p + i) | 0x20) != <u32>unchecked(GRPC_TYPE[<i32>i])) return false;
  }
  if (l == n) return true;
  const c = load<u8>(p + n);
  return c == 43 /* + */ || c == 59 /* ; */;
}
