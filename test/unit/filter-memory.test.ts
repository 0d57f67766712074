// Memory stays flat: no per-request growth of linear memory, and trace memory never holds more keys
// than its slots, however many distinct traces pass.
import { describe, expect, it } from "vitest";
import { SharedData } from "../../control-plane/src/wasmhost/index.js";
import { mockGroup, newFilter } from "../support/filter.js";

// make test runs 1,000,000 requests; make test-unit 200,000 (MEMORY_REQUESTS), to stay in its minute.
const REQUESTS = Number(process.env.MEMORY_REQUESTS ?? 1_000_000);

describe("memory", () => {
  it(`after ${REQUESTS.toLocaleString("en-US")} requests with distinct trace ids linear memory is no larger than after 10,000`, async () => {
    const shared = new SharedData();
    const slots = 4096;
    const f = await newFilter({
      groups: [mockGroup({ lanes: [{ name: "canary", services: ["mocka"], weight: 10 }] })],
      direction: "inbound", service: "mocka", shared, config: { traceMemory: { slots } },
    });
    const run = (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const s = f.vm.newHttpStream();
        s.callOnRequestHeaders([["my-request-id", `trace-${i}`], ["x-user-id", `u${i % 5000}`], ["cookie", "a=1; b=2"]]);
        s.callOnResponseHeaders([[":status", i % 10 === 0 ? "503" : "200"]]);
        s.complete();
      }
    };
    run(0, 10_000);
    const after10k = f.vm.memoryBytes();
    run(10_000, REQUESTS);
    expect(f.vm.memoryBytes()).toBeLessThanOrEqual(after10k);
    expect(shared.keyCount()).toBeLessThanOrEqual(slots);
    expect(shared.keyCount()).toBeGreaterThan(slots * 0.9);
    expect(f.vm.failed).toBe(false);
  }, 600_000);
});
