// Metrics the module defines, by name. One Stats per VM by default; pass the same Stats to several
// VMs to model Envoy's process-wide stats store (workers adding to the same counters).
//
// Semantics follow Envoy (source/extensions/common/wasm/context.cc):
//  - counter: increment by a positive offset (else BadArgument); record adds; get reads;
//  - gauge:   increment adds (negative offsets subtract); record sets; get reads;
//  - histogram: record appends the value; increment and get are BadArgument.
// Values are u64 in Envoy; gauges are kept signed here so an underflow stays visible in tests.
import { MetricType, WasmResult } from "./abi.js";

export interface Metric {
  readonly name: string;
  readonly type: MetricType;
  /** Counter/gauge value; for a histogram the last recorded value (0n before any). */
  value: bigint;
  /** Histograms only: every recorded value, in order. */
  values?: bigint[];
}

export class Stats {
  readonly metrics = new Map<string, Metric>();

  /** The metric named `name`, created with `type` when new; undefined when it exists with another type. */
  define(name: string, type: MetricType): Metric | undefined {
    const cur = this.metrics.get(name);
    if (cur) return cur.type === type ? cur : undefined;
    const m: Metric = type === MetricType.Histogram ? { name, type, value: 0n, values: [] } : { name, type, value: 0n };
    this.metrics.set(name, m);
    return m;
  }

  get(name: string): Metric | undefined {
    return this.metrics.get(name);
  }

  static increment(m: Metric, offset: bigint): WasmResult {
    if (m.type === MetricType.Counter) {
      if (offset <= 0n) return WasmResult.BadArgument;
      m.value += offset;
      return WasmResult.Ok;
    }
    if (m.type === MetricType.Gauge) {
      m.value += offset;
      return WasmResult.Ok;
    }
    return WasmResult.BadArgument;
  }

  static record(m: Metric, value: bigint): WasmResult {
    const v = BigInt.asUintN(64, value);
    if (m.type === MetricType.Counter) m.value += v;
    else if (m.type === MetricType.Gauge) m.value = v;
    else {
      m.value = v;
      m.values!.push(v);
    }
    return WasmResult.Ok;
  }
}

/** The ids one VM hands its module for metrics: from 1, one id per metric for the VM's life. */
export class MetricIds {
  private readonly ids = new Map<Metric, number>();
  private readonly byIndex: Metric[] = [];

  idOf(m: Metric): number {
    let id = this.ids.get(m);
    if (id === undefined) {
      this.byIndex.push(m);
      id = this.byIndex.length;
      this.ids.set(m, id);
    }
    return id;
  }

  get(id: number): Metric | undefined {
    return id >= 1 ? this.byIndex[id - 1] : undefined;
  }
}
