// Generated code is checked in; regenerating from proto/ must give the same files byte for byte.
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function snapshot(dir: string): Map<string, string> {
  return new Map(files(dir).map((p) => [relative(dir, p), readFileSync(p, "utf8")]));
}

describe("generated code", () => {
  it("matches a fresh `buf generate` of proto/ (run `make generate` after editing a .proto)", () => {
    const out = mkdtempSync(join(tmpdir(), "graylane-gen-"));
    const template = join(out, "buf.gen.yaml");
    writeFileSync(template, readFileSync("buf.gen.yaml", "utf8")
      .replace("out: control-plane/src/generated", `out: ${join(out, "ts")}`)
      .replace("out: filter/assembly/generated", `out: ${join(out, "as")}`));
    execFileSync("buf", ["generate", "--template", template], {
      env: { ...process.env, PATH: `${process.cwd()}/node_modules/.bin:${process.env.PATH}` },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const fresh = snapshot(join(out, "ts"));
    expect(fresh.size).toBeGreaterThan(0);
    expect(snapshot("control-plane/src/generated")).toEqual(fresh);
    const freshAs = snapshot(join(out, "as"));
    expect(freshAs.size).toBeGreaterThan(5);
    expect(snapshot("filter/assembly/generated")).toEqual(freshAs);
  });
});
