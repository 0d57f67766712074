// `make envoy`: proves this Envoy has the V8 Wasm runtime by validating a config that loads filter.wasm.
import { edgeConfig, validate } from "./envoy.js";

const bin = process.argv[2];
const r = validate(bin, edgeConfig({ edge: true }));
if (!r.ok) {
  console.error(`envoy --mode validate failed for a config loading filter.wasm with envoy.wasm.runtime.v8:\n${r.output}`);
  process.exit(1);
}
console.log("envoy: a config loading filter/build/filter.wasm on envoy.wasm.runtime.v8 validates");
