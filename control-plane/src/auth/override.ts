// Signed override values (`overrideTrust: signed`): `lane.expiry.signature`, the signature being the
// unpadded base64url HMAC-SHA256 of `lane.expiry` (expiry in Unix seconds). The key never leaves the
// control plane except inside RuleResponses on the rule stream; people get values from
// POST /v1/overrides/sign (`graylane override sign`).
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export const MAX_OVERRIDE_TTL_MS = 7 * 24 * 3_600_000;

/** The signing key, and during a rotation the one before it (still accepted by the filters). */
export interface OverrideKey {
  current: Uint8Array;
  previous?: Uint8Array;
}

export function signOverride(key: Uint8Array, lane: string, expiresAtSeconds: number): string {
  const msg = `${lane}.${expiresAtSeconds}`;
  return `${msg}.${createHmac("sha256", key).update(msg).digest("base64url")}`;
}

/** Reads a key file (base64 of at least 32 bytes), creating it with a fresh key (mode 0600) when missing. */
export function loadOrCreateKey(path: string): Uint8Array {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
  if (key.length < 32) throw new Error(`override key file ${path}: want the base64 of at least 32 random bytes, found ${key.length} bytes`);
  return key;
}
