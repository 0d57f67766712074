// A tiny in-memory RuleSource for tests of the rule push and traffic summaries: lane groups parsed
// with parseLaneGroup, a revision counter, and listeners called after each "commit".
import type { RuleSource } from "../../control-plane/src/contracts.js";
import { parseLaneGroup, type LaneGroup } from "../../control-plane/src/model/lanegroup.js";

export class MemoryRuleSource implements RuleSource {
  revision = 0;
  private groups: LaneGroup[] = [];
  private readonly listeners = new Set<(revision: number) => void>();

  constructor(inputs: unknown[] = []) {
    this.groups = inputs.map(parse).sort(byName);
  }

  current(): { revision: number; groups: LaneGroup[] } {
    return { revision: this.revision, groups: [...this.groups] };
  }

  onChange(listener: (revision: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Creates or replaces a group (like PUT) and commits a revision. */
  put(input: unknown): number {
    const g = parse(input);
    this.groups = [...this.groups.filter((x) => x.name !== g.name), g].sort(byName);
    return this.commit();
  }

  delete(name: string): number {
    this.groups = this.groups.filter((x) => x.name !== name);
    return this.commit();
  }

  private commit(): number {
    this.revision++;
    for (const l of [...this.listeners]) l(this.revision);
    return this.revision;
  }
}

function parse(input: unknown): LaneGroup {
  const r = parseLaneGroup(input);
  if (!r.ok) throw new Error(`bad lane group: ${JSON.stringify(r.errors)}`);
  return r.value;
}

const byName = (a: LaneGroup, b: LaneGroup) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** A small lane group whose canary weight is the knob tests turn to make new versions. */
export function mockGroup(weight = 10, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: "mock",
    services: [{ name: "mocka" }, { name: "mockb" }, { name: "mockc" }],
    lanes: [{ name: "canary", services: ["mocka"], weight }],
    ...extra,
  };
}
