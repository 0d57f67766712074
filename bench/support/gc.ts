// A forced garbage collection for memory figures, without --expose-gc on the command line; its own
// module so a small child process (the push floor) can use it without loading the rest.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** Resident memory in bytes after two full garbage collections (the heap's garbage gone). */
export function rssAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}
let gcFn: (() => void) | undefined;
function gc(): void {
  if (!gcFn) {
    setFlagsFromString("--expose-gc");
    gcFn = runInNewContext("gc") as () => void;
  }
  gcFn();
}
