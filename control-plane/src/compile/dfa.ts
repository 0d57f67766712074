// The reference DFA runner: the filter runs the same tables the same way (lane/rules.ts CDfa).
import type { Dfa } from "../generated/graylane/v1/rules_pb.js";
import { NO_STATE } from "./regex.js";

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
