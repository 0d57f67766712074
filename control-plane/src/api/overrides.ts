// POST /v1/overrides/sign (`graylane override sign`): a signed override value for groups with
// `overrideTrust: signed` (the signing itself is auth/override.ts), and its part of /openapi.json.
import express, { type Router } from "express";
import { z } from "zod";
import { MAX_OVERRIDE_TTL_MS, signOverride, type OverrideKey } from "../auth/override.js";
import { parseDuration } from "../model/duration.js";
import { pointer } from "../model/errors.js";
import type { Store } from "../store/types.js";
import { fail, HttpError } from "./errors.js";
import type { PathItems } from "./openapi.js";

const SignBody = z.strictObject({
  lane: z.string().min(1),
  group: z.string().min(1).optional(),
  ttl: z.string().refine((t) => { const ms = parseDuration(t); return ms !== undefined && ms <= MAX_OVERRIDE_TTL_MS; }, "must be a duration up to 7d, like 30m or 1h").default("1h"),
});

export function overrideRoutes(key: OverrideKey | undefined, store: Store, now: () => number = Date.now): Router {
  const r = express.Router();
  r.post("/v1/overrides/sign", (req, res) => {
    const parsed = SignBody.safeParse(req.body ?? {});
    if (!parsed.success) throw new HttpError(400, parsed.error.issues.map((i) => ({ path: pointer(i.path), message: i.message })));
    if (!key) throw fail(409, "this control plane has no override key: start it with --override-key-file FILE");
    const { lane, group, ttl } = parsed.data;
    const groups = store.list().filter((g) => (group === undefined || g.name === group) && g.lanegroup.lanes.some((l) => l.name === lane));
    if (group !== undefined && !store.get(group)) throw fail(404, `lane group ${group} does not exist`, "/group");
    if (groups.length === 0) throw fail(400, `no lane group${group ? ` ${group}` : ""} has a lane ${lane}`, "/lane");
    const expiresAt = Math.floor((now() + parseDuration(ttl)!) / 1000);
    res.json({
      value: signOverride(key.current, lane, expiresAt),
      lane,
      expiresAt: new Date(expiresAt * 1000).toISOString(),
      // Where to send it: each matching group's override header, and whether it checks signatures.
      groups: groups.map((g) => ({ name: g.name, overrideHeader: g.lanegroup.overrideHeader ?? null, overrideTrust: g.lanegroup.overrideTrust })),
    });
  });
  return r;
}

const errors = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Errors" } } } });
export const overrideOpenApi: PathItems = {
  "/v1/overrides/sign": {
    post: {
      operationId: "signOverride", summary: "A signed override value (lane.expiry.signature) for groups with overrideTrust: signed",
      requestBody: { required: true, content: { "application/json": { schema: { type: "object", required: ["lane"], additionalProperties: false, properties: {
        lane: { type: "string" }, group: { type: "string" }, ttl: { type: "string", default: "1h", description: "Up to 7d" },
      } } } } },
      responses: {
        200: { description: "The value", content: { "application/json": { schema: { type: "object", required: ["value", "lane", "expiresAt", "groups"], properties: {
          value: { type: "string" }, lane: { type: "string" }, expiresAt: { type: "string" },
          groups: { type: "array", items: { type: "object", properties: { name: { type: "string" }, overrideHeader: { type: ["string", "null"] }, overrideTrust: { type: "string" } } } },
        } } } } },
        400: errors("Bad request or unknown lane"), 404: errors("No such group"), 409: errors("No override key configured"),
      },
    },
  },
};
