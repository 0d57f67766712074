// The Dfa message: built from a regex's tables (model/regex.ts, the dialect validation uses too),
// and the reference runner: the filter runs the same tables the same way (lane/rules.ts CDfa).
import { create } from "@bufbuild/protobuf";
import { DfaSchema, type Dfa } from "../generated/graylane/v1/rules_pb.js";
import { NO_STATE, regexTables } from "../model/regex.js";

/** Compiles `source` to the Dfa message the filter runs (start state 0, transitions u16 LE). */
export function compileRegex(source: string, opts: { stateCap?: number } = {}): Dfa {
  const t = regexTables(source, opts);
  return create(DfaSchema, {
    source,
    byteClasses: t.byteClasses.slice(),
    classCount: t.classCount,
    stateCount: t.stateCount,
    transitions: t.transitions.slice(),
    accepting: t.accepting.slice(),
  });
}

export function dfaMatches(dfa: Dfa, input: Uint8Array): boolean {
  const view = new DataView(dfa.transitions.buffer, dfa.transitions.byteOffset, dfa.transitions.byteLength);
  let state = 0;
  for (const byte of input) {
    const next = view.getUint16((state * dfa.classCount + dfa.byteClasses[byte]) * 2, true);
    if (next === NO_STATE) return false;
    state = next;
  }
  return dfa.accepting[state] === 1;
}
