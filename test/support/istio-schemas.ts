// Istio objects checked against Istio's own CRD schemas: the served versions' openAPIV3Schema of
// WasmPlugin, DestinationRule, VirtualService and Gateway from Istio 1.30.3's crd-all.gen.yaml
// (test/fixtures/istio-crd-schemas.json, descriptions removed), with ajv — what the API server's
// structural-schema validation checks, short of the CEL rules (tests check those they rely on).
import { readFileSync } from "node:fs";
import { Ajv, type ValidateFunction } from "ajv";

const { schemas } = JSON.parse(readFileSync("test/fixtures/istio-crd-schemas.json", "utf8")) as { schemas: Record<string, object> };
// strict off: the CRDs carry x-kubernetes-* keywords; formats (int32, ...) are not checked by the API server either.
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new Map<string, ValidateFunction>();

/** Throws, naming every problem, unless `obj` is valid for its apiVersion and kind. */
export function validateIstio(obj: { apiVersion?: string; kind?: string; metadata?: { name?: unknown } }): void {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const schema = schemas[key];
  if (!schema) throw new Error(`no Istio CRD schema for ${key} (have ${Object.keys(schemas).join(", ")})`);
  const name = obj.metadata?.name;
  if (typeof name !== "string" || name === "") throw new Error(`${key}: metadata.name is required`);
  let check = compiled.get(key);
  if (!check) compiled.set(key, (check = ajv.compile(schema)));
  if (!check(obj)) {
    throw new Error(`${key} ${name}: ${check.errors!.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ")}`);
  }
  // The CRD's CEL rules (x-kubernetes-validations) that Graylane's objects could break, which a
  // schema validator does not run.
  if (obj.kind === "WasmPlugin") {
    const spec = (obj as { spec: { url?: string; selector?: unknown; targetRef?: unknown; targetRefs?: unknown } }).spec;
    if (!/^(oci|file|https?):\/\//.test(spec.url ?? "")) throw new Error(`${key} ${name}: /spec/url must be oci://, file://, http:// or https://`);
    if (spec.selector !== undefined && (spec.targetRefs ?? spec.targetRef) !== undefined) {
      throw new Error(`${key} ${name}: only one of selector, targetRef or targetRefs can be set`);
    }
  }
}

/** The objects of one kind, typed. */
export const byKind = <O extends { kind: string }, K extends O["kind"]>(objects: O[], kind: K) =>
  objects.filter((o): o is Extract<O, { kind: K }> => o.kind === kind);
