// Bearer-token authentication for the REST API. With tokens configured, every /v1 route needs one:
// reads (and previews, which change nothing) need viewer, every other POST, PUT or DELETE operator
// (admin can do everything). Liveness, readiness, metrics, the OpenAPI document and the dashboard's
// static page stay open (the page asks for a token before it calls the API).
import type { Request, RequestHandler } from "express";
import { atLeast, type Principal, type Role, type Tokens } from "../auth/tokens.js";
import { sendErrors } from "./errors.js";

const OPEN = /^\/(healthz|readyz|metrics|openapi\.json|dashboard(\/.*)?)?$/;
const READ_ONLY_POSTS = new Set(["/v1/preview"]);

export function requiredRole(req: Request): Role | undefined {
  const read = req.method === "GET" || req.method === "HEAD";
  if (read && OPEN.test(req.path)) return undefined;
  if (read || (req.method === "POST" && READ_ONLY_POSTS.has(req.path))) return "viewer";
  return "operator";
}

export function authenticate(tokens: Tokens): RequestHandler {
  return (req, res, next) => {
    const need = requiredRole(req);
    if (!need) return next();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get("authorization") ?? "");
    const who = m ? tokens.authenticate(m[1]!) : undefined;
    if (!who) {
      res.set("WWW-Authenticate", 'Bearer realm="graylane"');
      return sendErrors(res, 401, [{ path: "", message: m ? "unknown API token" : "an API token is required: Authorization: Bearer <token>" }]);
    }
    if (!atLeast(who, need)) return sendErrors(res, 403, [{ path: "", message: `token ${who.name} is a ${who.role}; ${req.method} ${req.path} needs ${need}` }]);
    res.locals.principal = who;
    next();
  };
}

/** The authenticated caller, if the API has tokens. */
export const principalOf = (req: Request): Principal | undefined => req.res?.locals.principal as Principal | undefined;

const DEFAULT_ACTOR = "anonymous";

/** Who a change is recorded as: the token's name with tokens, else the X-Graylane-Actor header. */
export function actorOf(req: Request): string {
  const who = principalOf(req);
  if (who) return who.name;
  const a = req.get("x-graylane-actor")?.trim();
  return a ? a.slice(0, 200) : DEFAULT_ACTOR;
}

/** Loopback addresses may serve without tokens (the demo); anything else may not. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}

/** Anyone who reaches the API could pick who sees unreleased code: never open beyond this host. */
export function requireTokensBeyondLoopback(host: string, tokens: Tokens | undefined): void {
  if (isLoopback(host) || (tokens && tokens.size > 0)) return;
  throw new Error(`refusing to serve the API on ${host} without API tokens: give --tokens FILE or GRAYLANE_TOKENS, or listen on 127.0.0.1`);
}
