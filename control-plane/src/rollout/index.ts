export { ReleaseEngine, ReleaseError, OPERATIONS, type Operation, type EngineOptions } from "./engine.js";
export { allowedOperations, refusal, releaseView } from "./operations.js";
export { SqliteReleaseStore, type ReleaseStore } from "./release-store.js";
export { parseRelease, DEFAULT_ANALYSIS, DEFAULT_CANARY_STEPS, DEFAULT_BLUE_GREEN_STEPS, type ReleaseSpec, type StepSpec, type AnalysisSpec } from "./spec.js";
export type { Release, ReleaseStatus, AnalysisRun, AnalysisInterval } from "./state.js";
