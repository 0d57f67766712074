// The live dashboard: one static page (index.html, app.js, style.css beside this file) that polls the
// JSON API from the browser. Served at `/` and `/dashboard/*` by a router of its own, so the static
// routes stay out of the OpenAPI document. No build step and nothing fetched from elsewhere: the
// Content-Security-Policy allows only this origin.
import { readFileSync } from "node:fs";
import express, { type Response, type Router } from "express";

const ASSETS: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** The files, read once; a missing one answers 503 on the dashboard only, never breaks the API. */
function load(dir: URL): Map<string, Buffer | Error> {
  const files = new Map<string, Buffer | Error>();
  for (const name of Object.keys(ASSETS)) {
    try {
      files.set(name, readFileSync(new URL(name, dir)));
    } catch (e) {
      files.set(name, e instanceof Error ? e : new Error(String(e)));
    }
  }
  return files;
}

export function dashboardRouter(dir: URL = new URL("./", import.meta.url)): Router {
  const files = load(dir);
  const send = (res: Response, name: string) => {
    const body = files.get(name);
    if (!body || body instanceof Error) {
      res.status(503).json({ errors: [{ path: "", message: `dashboard asset ${name} is missing: ${body?.message ?? "unknown"}` }] });
      return;
    }
    res.set({
      "Content-Type": ASSETS[name],
      "Cache-Control": "no-cache",
      "Content-Security-Policy": DASHBOARD_CSP,
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    });
    res.send(body);
  };
  const router = express.Router();
  router.get("/", (_req, res) => send(res, "index.html"));
  router.get("/dashboard", (_req, res) => res.redirect(302, "/"));
  router.get("/dashboard/:file", (req, res, next) => {
    const name = req.params.file;
    if (name === "index.html" || !Object.hasOwn(ASSETS, name)) return next();
    send(res, name);
  });
  return router;
}
