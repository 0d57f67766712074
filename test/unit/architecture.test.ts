// The control plane's layering (DESIGN.md, Layout): no import cycle among files or among modules
// (the top-level folders of control-plane/src), and the domain does not know the HTTP layer, the
// composition root or the CLI. Type-only imports count.
import { describe, expect, it } from "vitest";
import { cycles, importGraph } from "../support/import-graph.js";

const DOMAIN = ["model", "compile", "store", "xds", "traffic", "rollout", "auth", "replicas", "wasmhost", "mesh", "controller"];
/** Who may import whom among the outer layers: cli → server → api → the domain. */
const FORBIDDEN: Record<string, string[]> = {
  ...Object.fromEntries(DOMAIN.map((m) => [m, ["api", "cli", "server"]])),
  api: ["cli", "server"],
  server: ["cli"],
};

const graph = importGraph();

describe("control-plane/src imports", () => {
  it("finds the modules (the walk reads the tree)", () => {
    for (const m of [...DOMAIN, "api", "cli", "server"]) expect(graph.modules.has(m), m).toBe(true);
  });

  it("has no cycle among files", () => {
    expect(cycles(graph.files).map((c) => c.join(" -> "))).toEqual([]);
  });

  it("has no cycle among modules", () => {
    expect(cycles(graph.modules).map((c) => c.join(" -> "))).toEqual([]);
  });

  it("keeps the domain off api/, server/ and cli/, and api/ off server/ and cli/", () => {
    const offending = [...graph.files].flatMap(([from, targets]) => [...targets]
      .filter((t) => FORBIDDEN[from.split("/")[0]!]?.includes(t.split("/")[0]!))
      .map((t) => `${from} imports ${t}`));
    expect(offending).toEqual([]);
  });

  it("the cycle check finds a cycle when there is one", () => {
    const g = new Map([["a", new Set(["b"])], ["b", new Set(["c"])], ["c", new Set(["a"])], ["d", new Set(["a"])]]);
    expect(cycles(g)).toEqual([["a", "b", "c", "a"]]);
    expect(cycles(new Map([["a", new Set(["b"])], ["b", new Set<string>()]]))).toEqual([]);
  });
});
