export { createApi, type ApiApp, type ApiOptions } from "./app.js";
export { openApiDocument, type PathItems } from "./openapi.js";
export { Previewer, DEFAULT_WASM_PATH, type PreviewRequest, type PreviewResult } from "./preview.js";
export { admissionHandler, admit, restValidators, ADMISSION_PATH, type AdmissionValidators, type AdmissionAnswer } from "./admission.js";
