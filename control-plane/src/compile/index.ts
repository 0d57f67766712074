export { compileRuleSet, CompileError, type CompiledRuleSet, type CompileOptions } from "./ruleset.js";
export { RegexError, DEFAULT_STATE_CAP, NO_STATE } from "../model/regex.js";
export { compileRegex, dfaMatches } from "./dfa.js";
export { murmur3_32, stickyBucket, BUCKETS } from "./murmur3.js";
