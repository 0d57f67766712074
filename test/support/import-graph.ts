// The import graph of control-plane/src, from the source text (type-only imports and re-exports
// included: a cycle through types still ties two modules together). A module is a top-level folder
// of control-plane/src (api, model, ...) or a top-level file (contracts).
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

export const SRC = resolve("control-plane/src");

export interface ImportGraph {
  /** file (relative to SRC) → the files it imports */
  files: Map<string, Set<string>>;
  /** module → the other modules it imports */
  modules: Map<string, Set<string>>;
}

export const moduleOf = (file: string): string => file.split("/")[0]!.replace(/\.ts$/, "");

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []);
}

export function importGraph(root = SRC): ImportGraph {
  const files = new Map<string, Set<string>>();
  const modules = new Map<string, Set<string>>();
  for (const path of sources(root)) {
    const from = relative(root, path);
    const targets = new Set<string>();
    for (const { fileName } of ts.preProcessFile(readFileSync(path, "utf8"), true, true).importedFiles) {
      if (!fileName.startsWith(".")) continue; // a package
      targets.add(relative(root, resolve(dirname(path), fileName.replace(/\.js$/, ".ts"))));
    }
    files.set(from, targets);
    const deps = modules.get(moduleOf(from)) ?? new Set<string>();
    for (const t of targets) if (moduleOf(t) !== moduleOf(from)) deps.add(moduleOf(t));
    modules.set(moduleOf(from), deps);
  }
  return { files, modules };
}

/** Every cycle found by a depth-first walk, each as the path a → ... → a (empty: none). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    path.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === "open") found.push([...path.slice(path.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    path.pop();
    state.set(n, "done");
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}
