// The graylane CLI in process (control-plane/src/cli/main.ts with argv), its output captured.
import { main } from "../../control-plane/src/cli/main.js";

export async function runCli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}
