/** Numbers as an operator reads them: bytes, durations, ages, clock times, percentages. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** `0 B`, `512 B`, `1.5 KiB`, `16 MiB`: one decimal below ten units, none above. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "-";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  const shown = value < 10 ? value.toFixed(1) : String(Math.round(value));
  return `${shown} ${UNITS[unit]}`;
}

/** Megabytes (as agents report memory) in the same units as `formatBytes`. */
export function formatMb(mb: number): string {
  return formatBytes(mb * 1024 * 1024);
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/**
 * `450ms`, `4.9s`, `12s`, `3m05s`, `2h03m`, `3d04h`: at most two units, the larger first, rounded to
 * the nearest (a 4.98 s run is `5.0s`, not `4s`); under ten seconds with a tenth. Negative or
 * non-finite durations are `-`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1000) return `${Math.floor(ms)}ms`;
  if (ms < 9_950) return `${(ms / 1000).toFixed(1)}s`;
  return wholeSeconds(Math.round(ms / 1000));
}

/** Whole seconds in at most two units: `12s`, `3m05s`, `2h03m`, `3d04h`. */
function wholeSeconds(s: number): string {
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${pad2(s % 60)}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${pad2(m % 60)}m`;
  const d = Math.floor(h / 24);
  return `${d}d${pad2(h % 24)}h`;
}

/** An age in whole seconds and up (`0s`, `7s`, `1m12s`): the sub-second part is noise here. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  return wholeSeconds(Math.max(0, Math.floor(ms / 1000)));
}

/** `12s ago`, or `-` for no time. */
export function formatAgo(iso: string | null | undefined, now: number): string {
  if (!iso) return "-";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return "-";
  return `${formatAge(now - t)} ago`;
}

/** Local wall-clock `HH:MM:SS`. */
export function formatClock(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "--:--:--";
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Local `YYYY-MM-DD HH:MM:SS`. */
export function formatDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "-";
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatClock(iso)}`;
}

/** `87%`, or `-` when there is nothing to divide. */
export function formatPercent(part: number, whole: number): string {
  if (whole <= 0 || !Number.isFinite(part / whole)) return "-";
  return `${Math.round((part / whole) * 100)}%`;
}

/** Milliseconds between two ISO times (the second defaulting to now), or NaN when either is missing. */
export function elapsed(from: string | null, to: string | null, now: number): number {
  if (!from) return Number.NaN;
  const start = Date.parse(from);
  const end = to ? Date.parse(to) : now;
  return end - start;
}
