// The API's Prometheus metrics, registered on the registry the server shares with the rule push
// (so one /metrics shows both), reusing those of an earlier app on the same registry (tests).
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { reuse } from "../metrics.js";
import type { Store } from "../store/types.js";

export interface ApiMetrics {
  revisions: Counter<"op">;
  requests: Counter<"method" | "route" | "code">;
  duration: Histogram<"method" | "route">;
}

// The store the gauges of a registry read: the latest app's, so a restarted server on the same
// registry does not read the closed store through the first app's closure.
const stores = new WeakMap<Registry, { store: Store }>();

export function apiMetrics(registry: Registry, store: Store): ApiMetrics {
  const registers = [registry];
  const bound = stores.get(registry) ?? { store };
  bound.store = store;
  stores.set(registry, bound);
  const revisions = reuse(registry, "graylane_revisions_total", () => new Counter({
    name: "graylane_revisions_total", help: "Store revisions committed by this control plane, by operation", labelNames: ["op"], registers,
  }));
  reuse(registry, "graylane_store_revision", () => new Gauge({
    name: "graylane_store_revision", help: "Latest committed store revision", registers,
    collect() { if (bound.store.ping()) this.set(bound.store.revisions({ limit: 1 })[0]?.revision ?? 0); },
  }));
  reuse(registry, "graylane_lanegroups", () => new Gauge({
    name: "graylane_lanegroups", help: "Lane groups currently stored", registers,
    collect() { if (bound.store.ping()) this.set(bound.store.list().length); },
  }));
  const requests = reuse(registry, "graylane_http_requests_total", () => new Counter({
    name: "graylane_http_requests_total", help: "REST API requests by route and status code", labelNames: ["method", "route", "code"], registers,
  }));
  const duration = reuse(registry, "graylane_http_request_duration_seconds", () => new Histogram({
    name: "graylane_http_request_duration_seconds", help: "REST API request latency", labelNames: ["method", "route"], registers,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  }));
  return { revisions, requests, duration };
}
