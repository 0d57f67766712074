// A VM's log: the module's proxy_log lines and the host's own (prefixed "wasmhost: " to tell them
// apart), kept bounded, and the critical lines of the current call into the module (a trap's error
// quotes them: they usually say why the module aborted).
import { LogLevel } from "./abi.js";

export interface LogEntry {
  level: number;
  message: string;
}

export class VmLog {
  readonly entries: LogEntry[] = [];
  private critical: string[] = [];

  constructor(
    /** The least level recorded (proxy_get_log_level answers it). */
    readonly level: number,
    /** At least this many of the most recent entries are kept. */
    private readonly max: number,
    private readonly onLog?: (entry: LogEntry) => void,
  ) {}

  /** A message from the module. */
  module(level: number, message: string): void {
    if (level < this.level) return;
    if (level >= LogLevel.Critical) this.critical.push(message);
    this.record({ level, message });
  }

  /** A message from the host itself. */
  host(level: number, message: string): void {
    if (level >= this.level) this.record({ level, message: `wasmhost: ${message}` });
  }

  /** Starts collecting the critical lines of a new call into the module. */
  beginCall(): void {
    this.critical = [];
  }

  /** The module's critical lines since beginCall(). */
  get criticalOfCall(): readonly string[] {
    return this.critical;
  }

  private record(entry: LogEntry): void {
    this.entries.push(entry);
    // Trim in batches so a long run stays O(1) amortised per entry.
    if (this.entries.length >= this.max * 2) this.entries.splice(0, this.entries.length - this.max);
    this.onLog?.(entry);
  }
}
