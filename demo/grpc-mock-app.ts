// A gRPC mock service (grpc-js) for the e2e suite: unary `/graylane.mock.Echo/Call` answers
// `<name>(<version>)` as raw bytes (no protobuf schema needed), or UNAVAILABLE for a share of calls
// spread evenly, like the HTTP mock's failRate.
import * as grpc from "@grpc/grpc-js";

export const ECHO_PATH = "/graylane.mock.Echo/Call";

const identity = (b: Buffer): Buffer => b;
const ECHO: grpc.ServiceDefinition = {
  call: {
    path: ECHO_PATH, requestStream: false, responseStream: false,
    requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  },
};

export interface GrpcMockOptions {
  name: string;
  version: string;
  port: number;
  /** Share of calls answered UNAVAILABLE (0..1), spread evenly. */
  failRate?: number;
}

export interface GrpcMockApp {
  port: number;
  options: GrpcMockOptions;
  close(): Promise<void>;
}

export async function startGrpcMockApp(options: GrpcMockOptions): Promise<GrpcMockApp> {
  const server = new grpc.Server();
  let served = 0;
  server.addService(ECHO, {
    call: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      const self = `${options.name}(${options.version})`;
      const rate = options.failRate ?? 0;
      const n = served++;
      if (rate > 0 && Math.floor((n + 1) * rate) > Math.floor(n * rate)) {
        done({ code: grpc.status.UNAVAILABLE, details: `${self} unavailable` });
        return;
      }
      done(null, Buffer.from(self));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${options.port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return {
    port,
    options,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** A client of the echo service at `address`; call(metadata) resolves to the answer or the gRPC status. */
export function echoClient(address: string) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  return {
    call: (metadata: Record<string, string> = {}): Promise<{ code: number; body: string }> => new Promise((resolve) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      client.makeUnaryRequest(ECHO_PATH, identity, identity, Buffer.alloc(0), md, { deadline: Date.now() + 10_000 }, (e, r) =>
        resolve(e ? { code: e.code, body: e.details } : { code: grpc.status.OK, body: r!.toString() }));
    }),
    close: () => client.close(),
  };
}
