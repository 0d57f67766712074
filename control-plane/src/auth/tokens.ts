// API bearer tokens with roles. Tokens are kept only as SHA-256 hashes (a tokens file holds hashes;
// tokens given in the environment are hashed on load), compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { z } from "zod";

export const ROLES = ["viewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];
const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export interface Principal {
  name: string;
  role: Role;
}

/** A filter's credential: role `node`, optionally scoped to one namespace's lane groups. */
export interface NodeTokenPrincipal {
  name: string;
  namespace?: string;
}

interface Entry {
  name: string;
  role: Role | "node";
  namespace?: string;
  hash: Buffer;
}

const TokenFile = z.strictObject({
  tokens: z.array(z.strictObject({
    name: z.string().min(1).max(100),
    role: z.enum([...ROLES, "node"]),
    /** For role node: the namespace whose lane groups the filter receives. */
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, "must be a Kubernetes namespace name").optional(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be the token's SHA-256 in 64 lowercase hex digits"),
  })),
});

export const hashToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

/** A new random token (43 url-safe characters) and the line a tokens file keeps for it. */
export function newToken(name: string, role: Role | "node", namespace?: string): { token: string; entry: { name: string; role: Role | "node"; namespace?: string; sha256: string } } {
  const token = `gl_${randomBytes(32).toString("base64url")}`;
  return { token, entry: { name, role, ...(namespace ? { namespace } : {}), sha256: hashToken(token) } };
}

export const atLeast = (p: Principal, role: Role): boolean => RANK[p.role] >= RANK[role];

export class Tokens {
  private constructor(private readonly entries: Entry[]) {}

  static empty(): Tokens {
    return new Tokens([]);
  }

  /** A YAML or JSON file `{tokens: [{name, role, sha256}]}`. */
  static fromFile(path: string): Tokens {
    let doc: unknown;
    try {
      doc = parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new Error(`tokens file ${path}: ${(e as Error).message}`);
    }
    const r = TokenFile.safeParse(doc);
    if (!r.success) {
      const i = r.error.issues[0]!;
      throw new Error(`tokens file ${path}: /${i.path.join("/")}: ${i.message}`);
    }
    return new Tokens(r.data.tokens.map((t) => ({ name: t.name, role: t.role, namespace: t.namespace, hash: Buffer.from(t.sha256, "hex") })));
  }

  /** `GRAYLANE_TOKENS="name:role:token,..."` (the tokens themselves; hashed here). */
  static fromEnv(value: string): Tokens {
    const entries = value.split(",").map((s) => s.trim()).filter(Boolean).map((item, i): Entry => {
      const [name, role, ...rest] = item.split(":");
      const token = rest.join(":");
      if (!name || !token || !(ROLES.includes(role as Role) || role === "node")) {
        throw new Error(`GRAYLANE_TOKENS entry ${i + 1}: want name:role:token with role one of ${ROLES.join(", ")}, node`);
      }
      return { name, role: role as Role | "node", hash: Buffer.from(hashToken(token), "hex") };
    });
    return new Tokens(entries);
  }

  merge(other: Tokens): Tokens {
    return new Tokens([...this.entries, ...other.entries]);
  }

  /** API tokens (node tokens do not count: they open nothing on the REST API). */
  get size(): number {
    return this.entries.filter((e) => e.role !== "node").length;
  }

  get nodeCount(): number {
    return this.entries.filter((e) => e.role === "node").length;
  }

  /** The API principal of a token, or undefined (also for node tokens). */
  authenticate(token: string): Principal | undefined {
    const e = this.find(token);
    return e && e.role !== "node" ? { name: e.name, role: e.role } : undefined;
  }

  /** The filter identity of a node token, or undefined. */
  authenticateNode(token: string): NodeTokenPrincipal | undefined {
    const e = this.find(token);
    return e && e.role === "node" ? { name: e.name, ...(e.namespace ? { namespace: e.namespace } : {}) } : undefined;
  }

  /** Every entry is compared, so timing does not tell which one matched. */
  private find(token: string): Entry | undefined {
    const h = createHash("sha256").update(token, "utf8").digest();
    let found: Entry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.hash, h) && !found) found = e;
    return found;
  }
}
