// Conditions (Istio HTTPMatchRequest style) against one request. A lane matches when any of its
// blocks holds; a block holds when all its conditions hold.
import { RequestView } from "./request";
import { startsWith } from "./bytes";
import {
  CCondition, CLane, KIND_BROWSER, KIND_COOKIE, KIND_HEADER, KIND_METHOD, KIND_OS, KIND_QUERY, KIND_URI,
  OP_ABSENT, OP_EXACT, OP_PREFIX, OP_PRESENT, OP_REGEX,
} from "./rules";

export function conditionHolds(c: CCondition, req: RequestView): bool {
  const kind = c.kind;
  if (kind == KIND_OS) return ((req.userAgentClasses() & 0xff) & c.classes) != 0;
  if (kind == KIND_BROWSER) return (((req.userAgentClasses() >> 8) & 0xff) & c.classes) != 0;
  if (kind == KIND_METHOD) {
    for (let i = 0; i < c.values.length; i++) {
      const v = unchecked(c.values[i]);
      if (<usize>v.byteLength == req.methodLen && memory.compare(v.dataStart, req.methodPtr, req.methodLen) == 0) return true;
    }
    return false;
  }
  let found = false;
  if (kind == KIND_HEADER) found = req.has(c.nameId);
  else if (kind == KIND_COOKIE) found = req.cookie(c.name);
  else if (kind == KIND_QUERY) found = req.query(c.name);
  else if (kind == KIND_URI) {
    found = req.pathPtr != 0;
    req.valPtr = req.pathPtr;
    req.valLen = req.pathLen;
  }
  const op = c.op;
  if (op == OP_PRESENT) return found;
  if (op == OP_ABSENT) return !found;
  if (!found) return false;
  const vp = req.valPtr;
  const vl = req.valLen;
  if (op == OP_EXACT) return <usize>c.value.byteLength == vl && memory.compare(c.value.dataStart, vp, vl) == 0;
  if (op == OP_PREFIX) return startsWith(vp, vl, c.value.dataStart, <usize>c.value.byteLength);
  if (op == OP_REGEX) return changetype<usize>(c.dfa) != 0 && c.dfa!.matches(vp, vl);
  return false;
}

export function laneMatches(lane: CLane, req: RequestView): bool {
  const blocks = lane.blocks;
  for (let b = 0; b < blocks.length; b++) {
    const conds = unchecked(blocks[b]);
    let all = true;
    for (let i = 0; i < conds.length; i++) {
      if (!conditionHolds(unchecked(conds[i]), req)) { all = false; break; }
    }
    if (all) return true;
  }
  return false;
}
