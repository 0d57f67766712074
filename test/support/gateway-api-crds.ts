// Gateway API's standard CRDs for the test API server: `make gateway-api-crds` fetches them from the
// sigs.k8s.io/gateway-api Go module (bin/fetch-gateway-api-crds.sh) and links them at
// .cache/gateway-api-crds.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export function gatewayApiCrds(dir = process.env.GATEWAY_API_CRDS ?? ".cache/gateway-api-crds"): any[] {
  if (!existsSync(dir)) throw new Error(`Gateway API CRDs not found at ${dir}: run \`make gateway-api-crds\` (\`make test\` does it) or set GATEWAY_API_CRDS`);
  // Each file holds its CRD, and for some a ValidatingAdmissionPolicy (and binding) beside it: the CRDs only.
  return readdirSync(dir).filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), "utf8")).map((d) => d.toJSON()))
    .filter((d) => d?.kind === "CustomResourceDefinition");
}
