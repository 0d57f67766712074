// Durations as people write them (traffic windows, release pauses, webhook timeouts, override
// TTLs): "60s", "5m", "1h", "1h30m", "250ms"; a bare number is seconds.
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when `text` is not a positive duration. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return positive(Number(s) * 1000);
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(s)) return undefined;
  let total = 0;
  for (const [, n, , unit] of s.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) total += Number(n) * UNITS[unit];
  return positive(total);
}

const positive = (ms: number) => (Number.isFinite(ms) && ms >= 1 ? Math.round(ms) : undefined);
