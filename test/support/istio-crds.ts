// Istio's CustomResourceDefinitions for the test API server, built from the schemas Istio 1.30.3
// ships (test/fixtures/istio-crd-schemas.json: the served versions' openAPIV3Schema of
// crd-all.gen.yaml, descriptions removed): WasmPlugin, DestinationRule, VirtualService, Gateway.
import { readFileSync } from "node:fs";

const { schemas } = JSON.parse(readFileSync("test/fixtures/istio-crd-schemas.json", "utf8")) as { schemas: Record<string, object> };

/** The CRDs, one per kind, every version the fixture has served; v1 stores where it exists. */
export function istioCrds(): any[] {
  const byKind = new Map<string, { group: string; kind: string; versions: Array<{ name: string; schema: object }> }>();
  for (const [key, schema] of Object.entries(schemas)) {
    const [group, version, kind] = key.split("/") as [string, string, string];
    const k = byKind.get(kind) ?? { group, kind, versions: [] };
    k.versions.push({ name: version, schema });
    byKind.set(kind, k);
  }
  return [...byKind.values()].map(({ group, kind, versions }) => {
    const plural = `${kind.toLowerCase()}s`;
    const storage = versions.some((v) => v.name === "v1") ? "v1" : versions[0]!.name;
    return {
      apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.${group}` },
      spec: {
        group, scope: "Namespaced",
        names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase() },
        versions: versions.map((v) => ({ name: v.name, served: true, storage: v.name === storage, schema: { openAPIV3Schema: v.schema }, subresources: { status: {} } })),
      },
    };
  });
}
