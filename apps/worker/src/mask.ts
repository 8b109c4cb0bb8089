/**
 * Masking of secret values in a step's output. A job can print a secret as it is, or encoded
 * (base64 at any alignment, base64url, hex, URL-encoded), or cut across lines; every such copy is
 * replaced by `***` before a line leaves the worker.
 */

export const MASK = "***";
/** Shorter values cannot be masked without masking ordinary output; the worker refuses them. */
export const MIN_SECRET_LENGTH = 4;
/** How long a line that ends with the start of a secret waits for the next line. */
const HOLD_MS = 50;

/** base64 of `value` as it appears inside a longer base64 text, for each of the three alignments. */
function base64Variants(value: Buffer, url: boolean): string[] {
  const out: string[] = [];
  // Stryker disable next-line EqualityOperator: a fourth offset (3 zero bytes) is offset 0 again, one base64 group later
  for (let pad = 0; pad < 3; pad++) {
    const encoded = Buffer.concat([Buffer.alloc(pad), value]).toString(url ? "base64url" : "base64");
    // Characters that mix padding bits with the value's bits differ with what precedes it.
    const skip = pad === 0 ? 0 : pad + 1;
    // Characters made only of the value's bits; the last partial one depends on what follows.
    const end = Math.floor(((pad + value.length) * 8) / 6);
    // Short pieces are left out with every other short form, in `secretVariants`.
    out.push(encoded.slice(skip, end));
  }
  return out;
}

/** Bytes a percent-encoder leaves as they are, by the rule of the tool that wrote them. */
const KEPT = {
  // encodeURIComponent (JavaScript, jq's @uri keeps fewer: covered by `strict`).
  js: /[A-Za-z0-9\-_.!~*'()]/,
  // RFC 3986's unreserved characters only: Python's quote(s, safe=""), Go's PathEscape minus '/'.
  strict: /[A-Za-z0-9\-_.~]/,
  // Python's quote(s) default, which also keeps '/', as do curl --data-urlencode-like path encoders.
  slash: /[A-Za-z0-9\-_.~/]/,
  // URLSearchParams, Java's URLEncoder, PHP's urlencode: '~' and the like encoded too.
  form: /[A-Za-z0-9\-_.*]/,
  // encodeURI, which leaves a URL's reserved characters alone.
  uri: /[A-Za-z0-9\-_.!~*'();,/?:@&=+$#]/,
  // Every byte encoded, as some tools write it.
  none: /(?!)/,
};

/** HTML and XML escaping of the five characters they escape. */
function htmlEscape(value: string): string {
  return value.replace(
    /[&<>"']/g,
    (c) => `&${{ "&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "#39" }[c]};`,
  );
}

/** `bytes` percent-encoded keeping what `kept` allows, with '+' for a space when `plus`. */
function percentEncode(bytes: Buffer, kept: RegExp, lower: boolean, plus: boolean): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    if (kept.test(c))
      out += c; // every rule is ASCII: a byte of a multi-byte character never matches
    else if (plus && c === " ") out += "+";
    else {
      const hex = b.toString(16).padStart(2, "0");
      out += `%${lower ? hex : hex.toUpperCase()}`;
    }
  }
  return out;
}

/** The encoded forms of one value: base64 (any alignment, both alphabets), hex and percent-encodings. */
function encodedForms(value: string): string[] {
  // Stryker disable next-line StringLiteral: utf8 is also what Buffer.from assumes without one
  const bytes = Buffer.from(value, "utf8");
  const hex = bytes.toString("hex");
  const forms = [...base64Variants(bytes, false), ...base64Variants(bytes, true), hex, hex.toUpperCase()];
  for (const kept of Object.values(KEPT))
    for (const lower of [false, true])
      for (const plus of kept === KEPT.none ? [false] : [false, true])
        forms.push(percentEncode(bytes, kept, lower, plus));
  return forms;
}

/**
 * Every form in which a secret is masked, longest first. Lines reach the masker without their line
 * breaks, so a secret that holds some (a PEM key, a value read from a file with its final newline)
 * is also looked for with them removed, and its encodings are taken with and without the final one.
 */
export function secretVariants(secret: string): string[] {
  const flat = secret.replace(/[\r\n]/g, "");
  // Stryker disable next-line Regex: with one break left, the value is multi-line and its flat form is encoded below anyway
  const trimmed = secret.replace(/[\r\n]+$/, "");
  const forms = new Set<string>([
    secret,
    flat,
    htmlEscape(secret),
    ...encodedForms(secret),
    ...encodedForms(trimmed),
  ]);
  // Stryker disable next-line ConditionalExpression,Regex: for a one-line secret these forms are the ones above
  if (/[\r\n]/.test(trimmed)) {
    // A secret of several lines (a PEM key) is printed in many ways besides whole: line by line
    // with something added (`sed 's/^/> /'`, `cat -n`), in part (`head`, `grep -v`), on one line
    // (`echo $KEY` unquoted joins with spaces, JSON and `printf %q` write \n), or re-encoded
    // without its breaks. Each line long enough to mask is a variant of its own.
    for (const line of trimmed.split(/\r?\n/)) forms.add(line.trim());
    forms.add(trimmed.replace(/\r?\n/g, " "));
    forms.add(trimmed.replace(/\r?\n/g, "\\n")); // JSON of LF lines, printf %q, or CRLF written as \n
    forms.add(trimmed.replace(/\r\n/g, "\\r\\n")); // JSON of CRLF lines
    for (const f of encodedForms(flat)) forms.add(f);
  }
  return [...forms]
    .filter((f) => f.length >= MIN_SECRET_LENGTH && !/[\r\n]/.test(f))
    .sort((a, b) => b.length - a.length);
}

/**
 * Secrets too short to mask safely; the worker refuses to start with them. What counts is what is
 * left without white space: four line breaks are no secret, and would mask nothing.
 */
export function tooShort(secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, v]) => v.replace(/\s/g, "").length < MIN_SECRET_LENGTH)
    .map(([k]) => k);
}

interface Held {
  text: string;
  /** Which characters of `text` are part of a secret. */
  hidden: boolean[];
}

/**
 * Masks one stream of lines. A line whose end could be the start of a secret is held until the next
 * line arrives (or briefly, then sent), so a secret cut across lines is masked on both sides.
 */
export class LineMasker {
  private readonly variants: string[];
  private readonly longest: number;
  private held: Held[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    secrets: string[],
    private readonly emit: (text: string) => void,
  ) {
    this.variants = [...new Set(secrets.flatMap(secretVariants))];
    // Stryker disable next-line ArrowFunction: only how far back a pending prefix is searched for
    this.longest = Math.max(0, ...this.variants.map((v) => v.length));
  }

  line(text: string): void {
    // Stryker disable next-line ConditionalExpression,BlockStatement: a shortcut; with no variants the general path below emits the same line at once
    if (this.variants.length === 0) {
      this.emit(text);
      return;
    }
    clearTimeout(this.timer ?? undefined);
    this.timer = null;
    // Stryker disable next-line ArrayDeclaration: positions never marked read as undefined, as falsy as false
    this.held.push({ text, hidden: new Array<boolean>(text.length).fill(false) });
    this.markAcrossHeld();
    // Keep the lines that hold the end of the text when that end may be the start of a secret.
    const total = this.held.reduce((n, h) => n + h.text.length, 0);
    const cutoff = total - this.pendingPrefix(this.held.map((h) => h.text).join(""));
    // Lines wholly before the cutoff go now; the rest wait for the next line, or the timer.
    let end = 0;
    for (let first = this.held[0]; first && end + first.text.length <= cutoff; first = this.held[0]) {
      end += first.text.length;
      this.send(first);
      this.held.shift();
    }
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a timer over nothing held flushes nothing
    if (this.held.length > 0) this.timer = setTimeout(() => this.flush(), HOLD_MS).unref();
  }

  /** Sends whatever is held; call when the stream ends. */
  flush(): void {
    clearTimeout(this.timer ?? undefined);
    this.timer = null;
    for (const h of this.held.splice(0)) this.send(h);
  }

  /** Marks every occurrence of a variant in the held lines joined without their line breaks. */
  private markAcrossHeld(): void {
    const joined = this.held.map((h) => h.text).join("");
    const hidden = this.held.flatMap((h) => h.hidden);
    for (const v of this.variants) {
      let at = joined.indexOf(v);
      while (at !== -1) {
        for (let i = at; i < at + v.length; i++) hidden[i] = true;
        at = joined.indexOf(v, at + 1);
      }
    }
    let offset = 0;
    for (const h of this.held) {
      h.hidden = hidden.slice(offset, offset + h.text.length);
      offset += h.text.length;
    }
  }

  /** Length of the longest end of `text` that is a proper prefix of some variant. */
  private pendingPrefix(text: string): number {
    // Stryker disable next-line MethodExpression,ArithmeticOperator: only how much is searched; a longer tail finds the same prefixes
    const tail = text.slice(-(this.longest - 1));
    let best = 0;
    for (const v of this.variants) {
      // Stryker disable next-line EqualityOperator: n equal to best finds nothing longer
      for (let n = Math.min(tail.length, v.length - 1); n > best; n--) {
        if (tail.endsWith(v.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  private send(h: Held): void {
    let out = "";
    let inMask = false;
    for (let i = 0; i < h.text.length; i++) {
      if (h.hidden[i]) {
        if (!inMask) out += MASK;
        inMask = true;
      } else {
        out += h.text[i];
        inMask = false;
      }
    }
    this.emit(out);
  }
}
