// Who a filter is, on the gRPC side: a client certificate (mTLS, verified by the server against the
// client CA) or a per-node bearer token in the call's metadata. The identity's namespace is its
// scope: the lane groups it receives (see SnapshotCache.snapshotFor). A forged traffic report or
// rule stream without an identity is refused, so it cannot move a release's analysis.
import type { PeerCertificate } from "node:tls";
import type { Tokens } from "./tokens.js";

export interface NodePrincipal {
  name: string;
  /** Only lane groups of this namespace (and cluster-wide ones); undefined: every group. */
  namespace?: string;
  via: "certificate" | "token";
}

export interface NodeAuthOptions {
  /** Tokens with role `node` (others are refused on the gRPC side). */
  tokens?: Tokens;
  /** The server verifies client certificates (mTLS with a client CA). */
  clientCertificates?: boolean;
}

/** The namespace in an Istio / SPIFFE identity: spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/ACCOUNT. */
export function spiffeNamespace(san: string | undefined): string | undefined {
  for (const part of (san ?? "").split(/,\s*/)) {
    const m = /^URI:spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(part.trim());
    if (m) return m[1];
  }
  return undefined;
}

export class NodeAuth {
  constructor(private readonly opts: NodeAuthOptions) {}

  /** Whether subscribers must prove who they are. */
  get required(): boolean {
    return !!this.opts.clientCertificates || (this.opts.tokens?.nodeCount ?? 0) > 0;
  }

  /** The caller's identity, or the reason there is none. */
  identify(call: { authorization: string | undefined; peerCertificate(): PeerCertificate | undefined }): NodePrincipal | { error: string } {
    const auth = call.authorization;
    if (auth !== undefined && this.opts.tokens) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      const who = m ? this.opts.tokens.authenticateNode(m[1]!) : undefined;
      if (!who) return { error: "unknown node token" };
      return { name: who.name, namespace: who.namespace, via: "token" };
    }
    if (this.opts.clientCertificates) {
      const cert = call.peerCertificate();
      if (cert && Object.keys(cert).length > 0) {
        const cn = typeof cert.subject?.CN === "string" ? cert.subject.CN : "";
        return { name: cn || cert.fingerprint256, namespace: spiffeNamespace(cert.subjectaltname), via: "certificate" };
      }
    }
    return { error: this.opts.clientCertificates ? "a client certificate or a node token is required" : "a node token is required (authorization: Bearer <token>)" };
  }
}
