// AssemblyScript's abort/trace routed to proxy_log (asconfig.json `use`), so the module imports
// nothing but proxy-wasm `env` functions. An abort still traps: it is a bug, and Envoy must see it.
import { proxy_log } from "./imports";
import { LogLevel } from "./types";

function logUtf16(level: u32, prefix: string, message: usize): void {
  let text = prefix;
  if (message != 0) text += changetype<string>(message);
  const bytes = String.UTF8.encode(text);
  proxy_log(level, changetype<usize>(bytes), bytes.byteLength);
}

export function graylaneAbort(message: usize, fileName: usize, line: u32, column: u32): void {
  let where = "graylane abort: ";
  if (fileName != 0) where += changetype<string>(fileName) + ":" + line.toString() + ":" + column.toString() + ": ";
  logUtf16(LogLevel.Critical, where, message);
  unreachable();
}

export function graylaneTrace(message: usize, n: i32, a0: f64, a1: f64, a2: f64, a3: f64, a4: f64): void {
  logUtf16(LogLevel.Trace, "graylane trace: ", message);
}
