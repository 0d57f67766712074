// The validating admission webhook's answer to one AdmissionReview (admission.k8s.io/v1), as a pure
// function of the review and the validators REST uses: Store.validate for a LaneGroup (alone and
// against the other groups) and ReleaseEngine.validate for a Release. No check lives here; the
// object becomes the model document REST would receive (model/kube.ts: spec named by
// metadata.name), and every error comes back at its object path (`/lanes/0/weight` →
// `/spec/lanes/0/weight`, `/name` → `/metadata/name`), all at once.
//
// admissionHandler (below) is its HTTP face, which startControlPlane serves on its own HTTPS port
// (`serve --webhook-port`); api/webhook-config.ts renders the ValidatingWebhookConfiguration that
// points the API server at it (deploy/webhook.yaml, `graylane webhook manifest`).
import type { RequestListener, ServerResponse } from "node:http";
import { isDeepStrictEqual } from "node:util";
import type { FieldError } from "../model/errors.js";
import type { ReleaseEngine } from "../rollout/engine.js";
import type { Store } from "../store/types.js";
import { describeErrors, modelDocument, objectErrors, type KubeObject } from "../model/kube.js";
import { API_GROUP, API_VERSION, LANE_GROUP, RELEASE } from "../store/kube-resources.js";

export const ADMISSION_VERSION = "admission.k8s.io/v1";

/** What a validator answers: REST's verdict on the model document. `status` 409 for a conflict (default 400). */
export type Verdict = { ok: true } | { ok: false; errors: FieldError[]; status?: number };

export interface AdmissionValidators {
  /** A LaneGroup document, alone and against the other groups (the store's validate). */
  laneGroup(document: unknown): Verdict;
  /** A Release document (the release engine's validate); `existing` names the release an UPDATE replaces. Absent: Releases are refused. */
  release?(document: unknown, existing?: string): Verdict;
  /**
   * Told of each LaneGroup create or update it admits (dry runs aside) with the user the API server
   * names, so the Kubernetes store can make that user the actor of the revision it then records.
   */
  admitted?(name: string, spec: unknown, user: string): void;
}

/** The HTTP answer: 200 with an AdmissionReview, or 400 with the API's errors when the body is none. */
export interface AdmissionAnswer {
  status: number;
  body: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: {
    status: "Failure";
    code: number;
    reason: "Invalid" | "Conflict";
    message: string;
    details?: { name?: string; group: string; kind: string; causes: Array<{ reason: "FieldValueInvalid"; field: string; message: string }> };
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

const review = (response: AdmissionResponse): AdmissionAnswer => ({ status: 200, body: { apiVersion: ADMISSION_VERSION, kind: "AdmissionReview", response } });
const malformed = (errors: FieldError[]): AdmissionAnswer => ({ status: 400, body: { errors: errors.map((e) => ({ ...e, message: `not an AdmissionReview ${ADMISSION_VERSION}: ${e.message}` })) } });

/** A refusal that names every problem: status.message lists `path: message`, details.causes carry each (metav1.StatusCause: reason, field, message). */
export function denial(uid: string, kind: string, name: string | undefined, errors: FieldError[], status = 400): AdmissionResponse {
  const conflict = status === 409;
  return {
    uid, allowed: false,
    status: {
      status: "Failure",
      // Kubernetes says 422 Invalid where REST says 400.
      code: conflict ? 409 : 422,
      reason: conflict ? "Conflict" : "Invalid",
      message: `${kind}${name ? ` ${name}` : ""}: ${describeErrors(errors)}`,
      details: {
        ...(name ? { name } : {}), group: API_GROUP, kind: kind === LANE_GROUP.kind ? LANE_GROUP.plural : kind === RELEASE.kind ? RELEASE.plural : kind,
        causes: errors.map((e) => ({ reason: "FieldValueInvalid", field: e.path, message: e.message })),
      },
    },
  };
}

/** Answers one AdmissionReview body (parsed JSON) with the validators' verdict. */
export function admit(body: unknown, validators: AdmissionValidators): AdmissionAnswer {
  if (!isObject(body)) return malformed([{ path: "", message: "the body must be a JSON object" }]);
  const envelope: FieldError[] = [];
  if (body.apiVersion !== ADMISSION_VERSION) envelope.push({ path: "/apiVersion", message: `must be ${ADMISSION_VERSION} (got ${JSON.stringify(body.apiVersion)})` });
  if (body.kind !== "AdmissionReview") envelope.push({ path: "/kind", message: `must be AdmissionReview (got ${JSON.stringify(body.kind)})` });
  const request = body.request;
  if (!isObject(request)) envelope.push({ path: "/request", message: "is required (an object)" });
  else if (typeof request.uid !== "string" || !request.uid) envelope.push({ path: "/request/uid", message: "is required (a string)" });
  if (envelope.length || !isObject(request)) return malformed(envelope);
  const uid = request.uid as string;

  // From here the review has a uid: problems are answered as a refusal the API server passes on.
  const deny = (errors: FieldError[], kind = "AdmissionReview", name?: string, status?: number) => review(denial(uid, kind, name, errors, status));
  const gvk = isObject(request.kind) ? request.kind : {};
  const kind = gvk.kind;
  if (gvk.group !== API_GROUP || gvk.version !== API_VERSION || (kind !== LANE_GROUP.kind && kind !== RELEASE.kind)) {
    return deny([{ path: "/request/kind", message: `this webhook validates ${API_GROUP}/${API_VERSION} LaneGroup and Release, not ${JSON.stringify(gvk)}` }]);
  }
  const operation = request.operation;
  if (operation === "DELETE" || operation === "CONNECT") return review({ uid, allowed: true });
  if (operation !== "CREATE" && operation !== "UPDATE") {
    return deny([{ path: "/request/operation", message: `must be CREATE, UPDATE, DELETE or CONNECT (got ${JSON.stringify(operation)})` }], kind);
  }
  const object = request.object;
  if (!isObject(object)) return deny([{ path: "/request/object", message: `is required for ${operation} (an object)` }], kind);
  const obj = object as KubeObject;
  const name = typeof obj.metadata?.name === "string" ? obj.metadata.name : undefined;

  if (operation === "UPDATE") {
    const old = isObject(request.oldObject) ? (request.oldObject as KubeObject) : undefined;
    // Finalizers must come off an object being deleted, and labels or annotations may change on
    // one written while the webhook was down: only a new spec is judged (the RuleSet leaves an
    // invalid spec out either way, model/kube.ts selectLaneGroups).
    if (obj.metadata?.deletionTimestamp || (old && isDeepStrictEqual(old.spec, obj.spec))) return review({ uid, allowed: true });
  }

  const doc = modelDocument(obj);
  if (!doc.ok) return deny(doc.errors, kind, name);
  let verdict: Verdict;
  if (kind === LANE_GROUP.kind) verdict = validators.laneGroup(doc.document);
  else if (validators.release) verdict = validators.release(doc.document, operation === "UPDATE" ? name : undefined);
  else return deny([{ path: "", message: "this control plane runs no release engine: Releases cannot be validated" }], kind, name);
  if (!verdict.ok) return deny(objectErrors(verdict.errors), kind, name, verdict.status);
  const user = isObject(request.userInfo) && typeof request.userInfo.username === "string" ? request.userInfo.username : "";
  if (kind === LANE_GROUP.kind && name && user && request.dryRun !== true) validators.admitted?.(name, obj.spec, user);
  return review({ uid, allowed: true });
}

/** Where the webhook answers (the ValidatingWebhookConfiguration's path). */
export const ADMISSION_PATH = "/validate";
/** An AdmissionReview holds the object and the old object, each up to etcd's 1.5 MB. */
const MAX_BODY = 4 * 1024 * 1024;

/**
 * The webhook's HTTP handler (server/start.ts serves it on its own HTTPS port): POST /validate with
 * an AdmissionReview; GET /healthz. Other paths 404, in the API's error shape.
 */
export function admissionHandler(validators: AdmissionValidators): RequestListener {
  const send = (res: ServerResponse, answer: AdmissionAnswer) => {
    res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.body));
  };
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (req.method === "GET" && path === "/healthz") return send(res, { status: 200, body: { status: "ok" } });
    if (path !== ADMISSION_PATH) return send(res, { status: 404, body: { errors: [{ path: "", message: `no route ${req.method} ${path}: the webhook answers POST ${ADMISSION_PATH}` }] } });
    if (req.method !== "POST") return send(res, { status: 405, body: { errors: [{ path: "", message: `${ADMISSION_PATH} takes POST` }] } });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        send(res, { status: 413, body: { errors: [{ path: "", message: `the AdmissionReview is larger than ${MAX_BODY} bytes` }] } });
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => {
      if (res.headersSent) return;
      let body: unknown;
      try { body = JSON.parse(Buffer.concat(chunks).toString("utf8")); } catch (e) {
        return send(res, { status: 400, body: { errors: [{ path: "", message: `invalid JSON: ${(e as Error).message}` }] } });
      }
      let answer: AdmissionAnswer;
      try { answer = admit(body, validators); } catch (e) {
        console.error("graylane webhook: internal error:", e);
        answer = { status: 500, body: { errors: [{ path: "", message: `internal error: ${(e as Error).message}` }] } };
      }
      send(res, answer);
    });
  };
}

/**
 * The validators REST uses: the store's validate for lane groups, the release engine's for
 * releases; and a store that records who changed an object (the Kubernetes store's `admitted`) is
 * told the user of each admitted change.
 */
export function restValidators(store: Pick<Store, "validate"> & { admitted?(name: string, spec: unknown, user: string): void }, releases?: Pick<ReleaseEngine, "validate">): AdmissionValidators {
  return {
    laneGroup: (document) => store.validate(document),
    admitted: store.admitted && ((name, spec, user) => store.admitted!(name, spec, user)),
    release: releases && ((document, existing) => {
      const v = releases.validate(document, { existing });
      return v.ok ? { ok: true } : { ok: false, errors: v.error.errors, status: v.error.status };
    }),
  };
}
