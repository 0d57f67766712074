// Prometheus metrics on a registry that the control plane's parts share (one /metrics shows them
// all) and that outlives one run of them (a control plane stopped and started again in one process:
// tests, the demo): a metric already registered under the name is reused, as prom-client throws on
// a second registration.
import type { Metric, Registry } from "prom-client";

export function reuse<T extends Metric>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}
