export { compileRuleSet, CompileError, type CompiledRuleSet, type CompileOptions } from "./ruleset.js";
export { compileRegex, RegexError, DEFAULT_STATE_CAP, NO_STATE } from "./regex.js";
export { dfaMatches } from "./dfa.js";
export { murmur3_32, stickyBucket, BUCKETS } from "./murmur3.js";
