// DESIGN.md's error shape, {"errors": [{"path", "message"}]}, for every failure the API answers,
// including the ones express and body parsing raise, so clients parse one shape only.
import type { ErrorRequestHandler, RequestHandler, Response } from "express";
import type { FieldError } from "../model/errors.js";
import { StoreError } from "../store/types.js";

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errors: FieldError[],
  ) {
    super(errors.map((e) => e.message).join("; "));
  }
}

export const fail = (status: number, message: string, path = ""): HttpError => new HttpError(status, [{ path, message }]);

export function sendErrors(res: Response, status: number, errors: FieldError[]): void {
  res.status(status).json({ errors });
}

/** Unknown path: 404 in the same shape. */
export const notFound: RequestHandler = (req, res) => {
  sendErrors(res, 404, [{ path: "", message: `no route ${req.method} ${req.path}` }]);
};

export const errorHandler: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
  if (err instanceof HttpError || err instanceof StoreError) return sendErrors(res, err.status, err.errors);
  const e = err as { type?: string; status?: number; message?: string };
  if (e.type === "entity.parse.failed") return sendErrors(res, 400, [{ path: "", message: `invalid JSON: ${e.message}` }]);
  if (typeof e.status === "number" && e.status >= 400 && e.status < 500) {
    return sendErrors(res, e.status, [{ path: "", message: e.message ?? "bad request" }]);
  }
  console.error("graylane api: internal error:", err);
  sendErrors(res, 500, [{ path: "", message: "internal error: " + (e.message ?? String(err)) }]);
};
