/**
 * The `/` filter: whitespace-separated terms that must all match. `field:value` matches that field
 * (`state:running`, `actor:alice`), a bare term any field; matching ignores case and is by substring.
 */
export type Fields = Record<string, string>;

interface Term {
  field: string | null;
  value: string;
}

function parse(query: string): Term[] {
  return query
    .toLowerCase()
    .split(/\s+/)
    .filter((t) => t !== "")
    .map((t) => {
      const colon = t.indexOf(":");
      if (colon > 0 && colon < t.length - 1) return { field: t.slice(0, colon), value: t.slice(colon + 1) };
      return { field: null, value: t };
    });
}

export function makeFilter<T>(query: string, fields: (row: T) => Fields): (row: T) => boolean {
  const terms = parse(query);
  if (terms.length === 0) return () => true;
  return (row) => {
    const f = fields(row);
    return terms.every((t) => {
      if (t.field !== null) {
        const v = f[t.field];
        if (v !== undefined) return v.toLowerCase().includes(t.value);
      }
      const whole = t.field === null ? t.value : `${t.field}:${t.value}`;
      return Object.values(f).some((v) => v.toLowerCase().includes(whole));
    });
  };
}

export function applyFilter<T>(rows: readonly T[], query: string, fields: (row: T) => Fields): T[] {
  if (query.trim() === "") return rows as T[];
  return rows.filter(makeFilter(query, fields));
}
