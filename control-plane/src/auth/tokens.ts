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

interface Entry extends Principal {
  hash: Buffer;
}

const TokenFile = z.strictObject({
  tokens: z.array(z.strictObject({
    name: z.string().min(1).max(100),
    role: z.enum(ROLES),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be the token's SHA-256 in 64 lowercase hex digits"),
  })),
});

export const hashToken = (token: string): string => createHash("sha256").update(token, "utf8").digest("hex");

/** A new random token (43 url-safe characters) and the line a tokens file keeps for it. */
export function newToken(name: string, role: Role): { token: string; entry: { name: string; role: Role; sha256: string } } {
  const token = `gl_${randomBytes(32).toString("base64url")}`;
  return { token, entry: { name, role, sha256: hashToken(token) } };
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
    return new Tokens(r.data.tokens.map((t) => ({ name: t.name, role: t.role, hash: Buffer.from(t.sha256, "hex") })));
  }

  /** `GRAYLANE_TOKENS="name:role:token,..."` (the tokens themselves; hashed here). */
  static fromEnv(value: string): Tokens {
    const entries = value.split(",").map((s) => s.trim()).filter(Boolean).map((item, i): Entry => {
      const [name, role, ...rest] = item.split(":");
      const token = rest.join(":");
      if (!name || !token || !ROLES.includes(role as Role)) {
        throw new Error(`GRAYLANE_TOKENS entry ${i + 1}: want name:role:token with role one of ${ROLES.join(", ")}`);
      }
      return { name, role: role as Role, hash: Buffer.from(hashToken(token), "hex") };
    });
    return new Tokens(entries);
  }

  merge(other: Tokens): Tokens {
    return new Tokens([...this.entries, ...other.entries]);
  }

  get size(): number {
    return this.entries.length;
  }

  /** The token's principal, or undefined. Every entry is compared, so timing does not tell which. */
  authenticate(token: string): Principal | undefined {
    const h = createHash("sha256").update(token, "utf8").digest();
    let found: Entry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.hash, h) && !found) found = e;
    return found && { name: found.name, role: found.role };
  }
}
