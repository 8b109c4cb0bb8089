/**
 * The `/` filter: whitespace-separated terms that must all match. `field:value` matches that field
 * (`state:running`, `actor:alice`), a bare term any field; matching ignores case and is by substring.
 * Where rows have a time, `since:` and `until:` bound it: a duration back from now (`since:90s`,
 * `since:1h`, `until:2d`) or a date and time (`since:2026-12-01`, `until:2026-12-01T09:30`, local time
 * unless it ends in `Z` or an offset).
 */
export type Fields = Record<string, string>;

interface TextTerm {
  kind: "text";
  field: string | null;
  value: string;
}

interface TimeTerm {
  kind: "time";
  bound: "since" | "until";
  /** Milliseconds since the epoch. */
  at: number;
}

type Term = TextTerm | TimeTerm;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `90s`, `15m`, `1h`, `2d`, `1w` back from `now`, or a date: milliseconds, or null when it is neither. */
export function parseTimeBound(value: string, now: number): number | null {
  const ago = /^(\d+(?:\.\d+)?)([smhdw])$/i.exec(value);
  if (ago) {
    const at = now - Number(ago[1]) * (UNIT_MS[(ago[2] ?? "s").toLowerCase()] ?? 1_000);
    // Before 1970 is not a window anyone means (and far enough back is not a date at all).
    return Number.isFinite(at) && at >= 0 ? at : null;
  }
  const date = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?/.exec(value);
  if (!date) return null;
  const at = Date.parse(value.length === 10 ? `${value}T00:00` : value.toUpperCase());
  if (Number.isNaN(at)) return null;
  // Date.parse rolls 2026-02-30 over into March: a day or time that does not exist is refused.
  const [, , mo, d, h, mi, s] = date.map(Number);
  if ((mo ?? 0) < 1 || (mo ?? 0) > 12 || (d ?? 0) < 1 || (d ?? 0) > daysIn(Number(date[1]), mo ?? 1))
    return null;
  if (date[4] !== undefined && ((h ?? 0) > 23 || (mi ?? 0) > 59 || (s ?? 0) > 59)) return null;
  return at;
}

/**
 * What is wrong with a query, or null: a `since:` or `until:` that is not a time (it would otherwise
 * be taken as text and match nothing, silently), or one in a view whose rows have no time.
 */
export function filterProblem(query: string, timed: boolean): string | null {
  for (const t of query.split(/\s+/)) {
    const m = /^(since|until):(.*)$/i.exec(t);
    if (!m) continue;
    const [, bound, value] = m;
    if (!timed) return `${bound}: does not apply here: these rows have no time`;
    if (parseTimeBound(value ?? "", Date.now()) === null)
      return `${t} is not a time: use a duration back from now (90s, 15m, 1h, 2d, 1w) or a date (2026-12-01, 2026-12-01T09:30)`;
  }
  return null;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function parse(query: string, timed: boolean, now: number): Term[] {
  return query
    .split(/\s+/)
    .filter((t) => t !== "")
    .map((t): Term => {
      const colon = t.indexOf(":");
      if (colon > 0 && colon < t.length - 1) {
        const field = t.slice(0, colon).toLowerCase();
        const value = t.slice(colon + 1);
        if (timed && (field === "since" || field === "until")) {
          const at = parseTimeBound(value, now);
          if (at !== null) return { kind: "time", bound: field, at };
        }
        return { kind: "text", field, value: value.toLowerCase() };
      }
      return { kind: "text", field: null, value: t.toLowerCase() };
    });
}

export interface FilterOptions<T> {
  /** The row's time in milliseconds, for `since:` and `until:`. */
  time?: (row: T) => number;
  now?: number;
}

/** Whether a query uses `since:` or `until:` (its result then moves with the clock). */
export function isTimeRelative(query: string): boolean {
  return /(^|\s)(since|until):\d+(\.\d+)?[smhdw](\s|$)/i.test(query);
}

export function makeFilter<T>(
  query: string,
  fields: (row: T) => Fields,
  opts: FilterOptions<T> = {},
): (row: T) => boolean {
  const time = opts.time;
  const terms = parse(query, time !== undefined, opts.now ?? Date.now());
  if (terms.length === 0) return () => true;
  return (row) => {
    let f: Fields | null = null;
    return terms.every((t) => {
      if (t.kind === "time") {
        const at = time ? time(row) : Number.NaN;
        return t.bound === "since" ? at >= t.at : at <= t.at;
      }
      f ??= fields(row);
      if (t.field !== null) {
        const v = f[t.field];
        if (v !== undefined) return v.toLowerCase().includes(t.value);
      }
      const whole = t.field === null ? t.value : `${t.field}:${t.value}`;
      return Object.values(f).some((v) => v.toLowerCase().includes(whole));
    });
  };
}

export function applyFilter<T>(
  rows: readonly T[],
  query: string,
  fields: (row: T) => Fields,
  opts: FilterOptions<T> = {},
): T[] {
  if (query.trim() === "") return rows as T[];
  return rows.filter(makeFilter(query, fields, opts));
}
