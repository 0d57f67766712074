// The release module: what Envoy will load. Imports, exports and size are part of the contract.
import { describe, expect, it } from "vitest";
import { readFileSync, statSync } from "node:fs";
const WASM_PATH = "filter/build/filter.wasm";

const ALLOWED_IMPORTS = new Set([
  "proxy_log", "proxy_get_log_level", "proxy_get_current_time_nanoseconds", "proxy_set_tick_period_milliseconds",
  "proxy_get_buffer_bytes", "proxy_get_buffer_status", "proxy_set_buffer_bytes",
  "proxy_get_header_map_pairs", "proxy_set_header_map_pairs", "proxy_get_header_map_value",
  "proxy_add_header_map_value", "proxy_replace_header_map_value", "proxy_remove_header_map_value", "proxy_get_header_map_size",
  "proxy_get_property", "proxy_set_property", "proxy_get_shared_data", "proxy_set_shared_data",
  "proxy_define_metric", "proxy_increment_metric", "proxy_record_metric", "proxy_get_metric",
  "proxy_call_foreign_function", "proxy_continue_stream", "proxy_close_stream", "proxy_send_local_response",
  "proxy_grpc_call", "proxy_grpc_stream", "proxy_grpc_send", "proxy_grpc_cancel", "proxy_grpc_close",
  "proxy_http_call", "proxy_set_effective_context", "proxy_done",
]);

// The hooks the lane filter needs. Envoy skips a hook the module does not export, so the body,
// request trailer, metadata and L4 hooks must stay out (each would cost a call into V8 per body
// chunk), and so must on_done (always "done"): one call a request. Response trailers carry gRPC's
// grpc-status; Envoy calls that hook only for responses with trailers (gRPC's, in practice).
const HOOKS = [
  "proxy_on_memory_allocate", "proxy_on_context_create", "proxy_on_vm_start", "proxy_on_configure", "proxy_on_tick",
  "proxy_on_request_headers", "proxy_on_response_headers", "proxy_on_response_trailers", "proxy_on_grpc_receive",
  "proxy_on_grpc_close", "proxy_on_log", "proxy_on_delete",
];
const NOT_EXPORTED = ["proxy_on_done",
  "proxy_on_request_body", "proxy_on_request_trailers", "proxy_on_request_metadata",
  "proxy_on_response_body", "proxy_on_response_metadata",
  "proxy_on_new_connection", "proxy_on_downstream_data", "proxy_on_upstream_data",
  "proxy_on_downstream_connection_close", "proxy_on_upstream_connection_close",
];

describe("filter.wasm (release build)", () => {
  const bytes = readFileSync(WASM_PATH);
  const mod = new WebAssembly.Module(bytes);

  it("imports nothing but proxy-wasm env functions", () => {
    const imports = WebAssembly.Module.imports(mod);
    expect(imports.length).toBeGreaterThan(10);
    for (const i of imports) {
      expect(i.module, `${i.module}.${i.name}`).toBe("env");
      expect(ALLOWED_IMPORTS.has(i.name), `unexpected import ${i.name}`).toBe(true);
      expect(i.kind).toBe("function");
    }
    // The decision needs these; a broken build (wrong import order, empty module) lacks them.
    const names = imports.map((i) => i.name);
    for (const need of ["proxy_get_header_map_pairs", "proxy_replace_header_map_value", "proxy_get_shared_data",
      "proxy_set_shared_data", "proxy_call_foreign_function", "proxy_define_metric", "proxy_log"]) {
      expect(names).toContain(need);
    }
  });

  it("exports the ABI version, _initialize, memory and the hooks it uses, and no body or L4 hook", () => {
    const exports = new Map(WebAssembly.Module.exports(mod).map((e) => [e.name, e.kind]));
    expect(exports.get("proxy_abi_version_0_2_1")).toBe("function");
    expect(exports.get("_initialize")).toBe("function");
    expect(exports.get("memory")).toBe("memory");
    for (const hook of HOOKS) expect(exports.get(hook), hook).toBe("function");
    for (const hook of NOT_EXPORTED) expect(exports.has(hook), hook).toBe(false);
    expect(exports.has("_start")).toBe(false);
  });

  // Built at -O3 for speed (inlined accessors; -Oz was 54 KB and ~30% more guest time per request):
  // the size is paid once per VM at compile time, the budget catches accidental bloat.
  it("stays under 80 KB", () => {
    const size = statSync(WASM_PATH).size;
    expect(size).toBeGreaterThan(4096);
    expect(size).toBeLessThan(80 * 1024);
  });
});
