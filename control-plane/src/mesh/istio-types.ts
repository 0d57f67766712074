// The part of Istio's API that Graylane generates: WasmPlugin (extensions.istio.io/v1alpha1),
// DestinationRule and VirtualService (networking.istio.io/v1, or v1beta1 for Istio < 1.22), as
// Istio's CRDs define them. Tests check every generated object against those CRD schemas
// (test/support/istio-schemas.ts), so these types cannot drift from what Istio accepts.
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

type StringMatch = { exact: string } | { prefix: string } | { regex: string };

export interface HttpRoute {
  name?: string;
  match?: Array<{ headers?: Record<string, StringMatch>; uri?: StringMatch }>;
  route: Array<{ destination: { host: string; subset?: string; port?: { number: number } }; weight?: number }>;
}

export interface WasmPlugin {
  apiVersion: "extensions.istio.io/v1alpha1";
  kind: "WasmPlugin";
  metadata: ObjectMeta;
  spec: {
    selector?: { matchLabels: Record<string, string> };
    targetRef?: { kind: string; name: string; group?: string };
    targetRefs?: Array<{ kind: string; name: string; group?: string }>;
    url: string;
    sha256?: string;
    imagePullPolicy?: "IfNotPresent" | "Always";
    imagePullSecret?: string;
    pluginName?: string;
    type?: "HTTP" | "NETWORK";
    phase?: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED_PHASE";
    priority?: number;
    failStrategy?: "FAIL_OPEN" | "FAIL_CLOSE" | "FAIL_RELOAD";
    pluginConfig?: Record<string, unknown>;
  };
}

type NetworkingVersion = "networking.istio.io/v1" | "networking.istio.io/v1beta1";

export interface DestinationRule {
  apiVersion: NetworkingVersion;
  kind: "DestinationRule";
  metadata: ObjectMeta;
  spec: {
    host: string;
    subsets?: Array<{ name: string; labels?: Record<string, string> }>;
    trafficPolicy?: { connectionPool?: { http?: { h2UpgradePolicy?: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE" } } };
  };
}

export interface VirtualService {
  apiVersion: NetworkingVersion;
  kind: "VirtualService";
  metadata: ObjectMeta;
  spec: { hosts: string[]; gateways?: string[]; http: HttpRoute[] };
}

export type IstioObject = WasmPlugin | DestinationRule | VirtualService;
