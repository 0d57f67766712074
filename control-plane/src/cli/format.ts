// Plain aligned tables (kubectl style) and the small value formats they use.
export function table(header: string[], rows: Array<Array<string | number | null | undefined>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === "" ? "-" : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ").trimEnd()).join("\n") + "\n";
}

export const percent = (share: number): string => `${(Math.round(share * 10000) / 100).toString()}%`;

export const ms = (v: number | null): string => (v === null ? "-" : `${Math.round(v * 10) / 10}ms`);

/** A short JSON rendering for table cells and diffs. */
export function short(v: unknown, max = 60): string {
  const s = v === undefined ? "undefined" : JSON.stringify(v);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/** gRPC statuses by count, most first: "OK 70 UNAVAILABLE 30"; "-" for none. */
export function grpcStatusesText(statuses: Record<string, number>): string {
  const e = Object.entries(statuses).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  return e.length ? e.map(([name, n]) => `${name} ${n}`).join(" ") : "-";
}
