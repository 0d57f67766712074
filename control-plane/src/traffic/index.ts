export { IngestBehindError, TrafficIngest, type TrafficIngestOptions, type ReportResult, type TrafficTotal } from "./ingest.js";
export { quantile, type Histogram } from "./histogram.js";
