// The regex dialect of lane groups and its byte DFA, built once by the control plane so the filter
// never backtracks. Validation (model/lanegroup.ts) and compilation (compile/dfa.ts, which wraps
// these tables in the Dfa message) share it, so a regex that validates is one that compiles.
//
// Semantics (docs/decisions.md, "Regex"):
// - Full match: the whole value must match. A leading `^` and a trailing unescaped `$` are allowed
//   and stripped (they add nothing to a full match); every other assertion is refused.
// - Syntax: JavaScript RegExp without flags and without Annex B leniency (so `\Z`, `\p{L}`, a lone
//   `]` or `{` are syntax errors instead of silently meaning a letter); backreferences are refused.
//   One inline flag, as Istio (RE2) users write it: a leading `(?i)` makes the whole pattern
//   case-insensitive (ASCII case folding: JavaScript's `i` without `u` never folds a non-ASCII
//   character onto an ASCII one). Any other flag group — `(?i:…)`, `(?s)`, `(?is)`, `(?i)` later in
//   the pattern — is refused by name.
// - The alphabet is bytes 0x00–0xFF. The pattern must be ASCII: a non-ASCII character, literal or
//   escaped (`\xe9`, `\u00e9`), is refused. A character set matches an input byte 0x80–0xFF when it
//   contains U+0080 — that is `.`, negated classes and `\S` `\W` `\D` match every non-ASCII byte;
//   `\s`, `\w`, `\d` and positive classes match none. Non-ASCII input (UTF-8) is therefore matched
//   byte by byte: `.` consumes one byte of a multi-byte character, `..` both bytes of "é".
//
// Tables (the Dfa message, read by the filter's lane/rules.ts and by dfa.ts):
// - States are the live states of the minimal DFA (a state is live when an accepting state is
//   reachable from it); the dead state is not in the table: a transition to it is 0xFFFF (reject).
//   A regex that matches nothing is one non-accepting state whose transitions all reject.
// - State 0 is the initial state; the others are numbered breadth-first from it, following bytes
//   in ascending order (equivalently byte classes in ascending order).
// - Byte classes: bytes whose next state is the same from every state share a class; class ids are
//   assigned in order of first appearance scanning bytes from 0x00 to 0xFF.
import { CharSet, DFA, JS, NFA, TooManyNodesError, visitAst, type Char, type Expression } from "refa";

export const DEFAULT_STATE_CAP = 1024;
export const NO_STATE = 0xffff;
const BYTE_MAX = 0xff as Char;
/** Subset construction may pass through more states than the minimal DFA has; this bounds it. */
const constructionLimit = (cap: number) => Math.max(cap * 16, 16_384);

export class RegexError extends Error {
  constructor(public readonly regex: string, public readonly reason: string) {
    super(`regex ${JSON.stringify(regex)}: ${reason}`);
    this.name = "RegexError";
  }
}

/** Removes a leading `^` and an unescaped trailing `$`: the match is always full anyway. */
function stripAnchors(source: string): string {
  let s = source;
  if (s.startsWith("^")) s = s.slice(1);
  if (s.endsWith("$")) {
    let backslashes = 0;
    for (let i = s.length - 2; i >= 0 && s[i] === "\\"; i--) backslashes++;
    if (backslashes % 2 === 0) s = s.slice(0, -1);
  }
  return s;
}

interface AstNode { type: string; raw?: string; value?: number; kind?: string; [key: string]: unknown }

/** Walks a regexpp AST (parents and back links skipped) and refuses what has no byte-DFA meaning. */
function checkAst(source: string, node: AstNode): void {
  switch (node.type) {
    case "Character":
      if ((node.value ?? 0) > 0x7f) {
        throw new RegexError(source, `non-ASCII character ${node.raw} (patterns are ASCII; match non-ASCII input with . or negated classes)`);
      }
      break;
    case "Backreference":
      throw new RegexError(source, `backreferences are not supported (${node.raw})`);
    case "Assertion": {
      const what = node.kind === "lookahead" || node.kind === "lookbehind" ? "lookarounds" : node.kind === "word" ? "word boundaries" : "anchors other than a leading ^ and a trailing $";
      throw new RegexError(source, `assertions are not supported: ${what} (${node.raw})`);
    }
  }
  for (const [key, child] of Object.entries(node)) {
    if (key === "parent" || key === "resolved" || key === "references" || key === "groups") continue;
    if (Array.isArray(child)) for (const c of child) { if (c && typeof c === "object" && "type" in c) checkAst(source, c as AstNode); }
    else if (child && typeof child === "object" && "type" in child) checkAst(source, child as AstNode);
  }
}

/** A UTF-16 character set of the parser → the byte set it means (see the header comment). */
function toByteSet(cs: CharSet): CharSet {
  const ranges = cs.ranges.filter((r) => r.min <= 0x7f).map((r) => ({ min: r.min, max: Math.min(r.max, 0x7f) as Char }));
  if (cs.has(0x80 as Char)) ranges.push({ min: 0x80 as Char, max: BYTE_MAX });
  return CharSet.empty(BYTE_MAX).union(ranges);
}

const CASE_INSENSITIVE = "(?i)";

/**
 * The first inline flag group (`(?flags)` or `(?flags:`) outside a character class and not escaped,
 * e.g. "(?is)" at 3; lookarounds `(?=` `(?!` `(?<=` `(?<!`, named groups `(?<n>` and `(?:` are not flags.
 */
function flagGroup(s: string): { text: string; at: number } | undefined {
  let inClass = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "\\") { i++; continue; }
    if (inClass) { if (c === "]") inClass = false; continue; }
    if (c === "[") { inClass = true; continue; }
    if (c !== "(" || s[i + 1] !== "?") continue;
    const m = /^\(\?[a-zA-Z]+(?:-[a-zA-Z]*)?[:)]/.exec(s.slice(i)) ?? /^\(\?-[a-zA-Z]+[:)]/.exec(s.slice(i));
    if (m) return { text: m[0], at: i };
  }
  return undefined;
}

function parse(source: string): Expression {
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c > 0x7f) throw new RegexError(source, `non-ASCII character ${JSON.stringify(source[i])} at ${i} (patterns are ASCII; match non-ASCII input with . or negated classes)`);
  }
  const ignoreCase = source.startsWith(CASE_INSENSITIVE);
  const rest = ignoreCase ? source.slice(CASE_INSENSITIVE.length) : source;
  const flag = flagGroup(rest);
  if (flag) {
    const at = flag.at + (ignoreCase ? CASE_INSENSITIVE.length : 0);
    const why = flag.text === CASE_INSENSITIVE ? "(?i) is only supported at the start of the pattern"
      : "the only inline flag supported is a leading (?i) (case-insensitive)";
    throw new RegexError(source, `flag group ${flag.text.replace(/:$/, ":…)")} at ${at} is not supported: ${why}`);
  }
  const body = stripAnchors(rest);
  let parser: JS.Parser;
  try {
    parser = JS.Parser.fromLiteral({ source: body, flags: ignoreCase ? "i" : "" }, { strict: true });
  } catch (e) {
    throw new RegexError(source, `invalid syntax: ${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, "")}`);
  }
  checkAst(source, parser.ast.pattern as unknown as AstNode);
  let expression: Expression;
  try {
    ({ expression } = parser.parse({ backreferences: "throw", assertions: "throw", maxBackreferenceWords: 0 }));
  } catch (e) {
    if (e instanceof TooManyNodesError) throw new RegexError(source, "pattern too large (too many repetitions)");
    throw new RegexError(source, `not supported: ${(e as Error).message}`);
  }
  visitAst(expression, { onCharacterClassEnter(node) { node.characters = toByteSet(node.characters); } });
  return expression;
}

function toMinimalDfa(source: string, cap: number): DFA {
  const expression = parse(source);
  const limit = constructionLimit(cap);
  try {
    const nfa = NFA.fromRegex(expression, { maxCharacter: BYTE_MAX }, { assertions: "throw" }, new NFA.LimitedNodeFactory(limit));
    const dfa = DFA.fromFA(nfa, new DFA.LimitedNodeFactory(limit));
    dfa.minimize();
    return dfa;
  } catch (e) {
    if (e instanceof TooManyNodesError) throw new RegexError(source, `DFA has more than ${limit} states, over the cap of ${cap}`);
    throw e;
  }
}

/** The tables of a Dfa message (the caller copies them: cached results are shared). */
export interface DfaTables {
  byteClasses: Uint8Array;
  classCount: number;
  stateCount: number;
  transitions: Uint8Array;
  accepting: Uint8Array;
}

function tables(source: string, cap: number): DfaTables {
  const dfa = toMinimalDfa(source, cap);

  // States that can still reach an accepting state; the rest are dead and become "reject".
  const nodes = [...dfa.nodes()];
  const incoming = new Map<DFA.Node, DFA.Node[]>(nodes.map((n) => [n, []]));
  for (const n of nodes) for (const [, to] of n.out) incoming.get(to)!.push(n);
  const live = new Set<DFA.Node>(dfa.finals);
  const stack = [...dfa.finals];
  while (stack.length) for (const p of incoming.get(stack.pop()!) ?? []) if (!live.has(p)) { live.add(p); stack.push(p); }

  // Number live states breadth-first from the start, bytes in ascending order.
  const ids = new Map<DFA.Node, number>();
  const order: DFA.Node[] = [];
  const visit = (n: DFA.Node) => { if (live.has(n) && !ids.has(n)) { ids.set(n, order.length); order.push(n); } };
  visit(dfa.initial);
  if (order.length === 0) order.push(dfa.initial); // matches nothing: one state, every byte rejects
  const rows: number[][] = [];
  for (let i = 0; i < order.length; i++) {
    const row = new Array<number>(256);
    for (let b = 0; b < 256; b++) {
      const to = order[i].out.get(b as Char);
      if (to) visit(to);
      row[b] = to !== undefined && ids.has(to) ? ids.get(to)! : NO_STATE;
    }
    rows.push(row);
  }
  if (order.length > cap) throw new RegexError(source, `DFA has ${order.length} states, over the cap of ${cap}`);

  // Byte classes: bytes with the same column of next states across all states share a class.
  const byteClasses = new Uint8Array(256);
  const columns = new Map<string, number>();
  const representatives: number[] = [];
  for (let b = 0; b < 256; b++) {
    const key = rows.map((r) => r[b]).join(",");
    let c = columns.get(key);
    if (c === undefined) { c = representatives.length; columns.set(key, c); representatives.push(b); }
    byteClasses[b] = c;
  }
  const classCount = representatives.length;
  const transitions = new Uint8Array(order.length * classCount * 2);
  const view = new DataView(transitions.buffer);
  rows.forEach((row, s) => representatives.forEach((b, c) => view.setUint16((s * classCount + c) * 2, row[b], true)));
  const accepting = new Uint8Array(order.map((n) => (dfa.finals.has(n) ? 1 : 0)));
  return { byteClasses, classCount, stateCount: order.length, transitions, accepting };
}

// Compiling is pure, and the same regexes come back on every change (validation, then compilation,
// of every revision): remember recent results, errors included.
const CACHE_SIZE = 512;
const cache = new Map<string, DfaTables | RegexError>();

/** The DFA tables of `source` (start state 0, transitions u16 LE); a RegexError outside the dialect or over the cap. */
export function regexTables(source: string, opts: { stateCap?: number } = {}): Readonly<DfaTables> {
  const cap = opts.stateCap ?? DEFAULT_STATE_CAP;
  if (!Number.isInteger(cap) || cap < 1 || cap >= NO_STATE) throw new RangeError(`stateCap must be an integer from 1 to ${NO_STATE - 1}`);
  const key = `${cap}\u0000${source}`;
  let t = cache.get(key);
  if (t === undefined) {
    try { t = tables(source, cap); } catch (e) {
      if (!(e instanceof RegexError)) throw e;
      t = e;
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(key, t);
  }
  if (t instanceof RegexError) throw new RegexError(t.regex, t.reason);
  return t;
}
