/**
 * The one-line editor under the table: the `:` palette, the `/` filter, a reason or a number, and
 * yes/no confirmations. Pure state: the app feeds it keys and draws `view()`.
 */
export interface InputSpec {
  kind: "input";
  label: string;
  initial?: string;
  /** Candidates for the whole value typed so far (Tab completes to their common prefix). */
  complete?: (value: string) => string[];
  /** An error to show instead of submitting, or null when the value will do. */
  validate?: (value: string) => string | null;
  /** Called on every edit (a live filter). */
  onChange?: (value: string) => void;
  onSubmit: (value: string) => void;
  onCancel?: () => void;
}

export interface ConfirmSpec {
  kind: "confirm";
  question: string;
  onYes: () => void;
  onNo?: () => void;
  /** A third answer the question offers (`D detaches instead`): its key, what it does, its words. */
  other?: { key: string; run: () => void; says: string };
}

export type PromptSpec = InputSpec | ConfirmSpec;

export type PromptResult = "open" | "done";

function commonPrefix(words: readonly string[]): string {
  const [first, ...rest] = words;
  if (first === undefined) return "";
  let n = first.length;
  for (const w of rest) {
    let i = 0;
    while (i < n && i < w.length && w[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n);
}

function isControl(ch: string): boolean {
  const c = ch.charCodeAt(0);
  return c < 0x20 || c === 0x7f;
}

export class Prompt {
  value: string;
  error: string | null = null;

  constructor(readonly spec: PromptSpec) {
    this.value = spec.kind === "input" ? (spec.initial ?? "") : "";
  }

  /** Candidates for what is typed now (for the hint after the value). */
  completions(): string[] {
    return this.spec.kind === "input" && this.spec.complete ? this.spec.complete(this.value) : [];
  }

  /** Feeds one key (`key` as the terminal layer names it, `ch` the character typed, if any). */
  key(key: string, ch: string | undefined): PromptResult {
    return this.spec.kind === "confirm" ? this.confirmKey(this.spec, key) : this.inputKey(this.spec, key, ch);
  }

  private confirmKey(spec: ConfirmSpec, key: string): PromptResult {
    if (key === "y" || key === "Y") {
      spec.onYes();
      return "done";
    }
    if (key === "n" || key === "N" || key === "escape" || key === "enter" || key === "C-c") {
      spec.onNo?.();
      return "done";
    }
    if (spec.other && key === spec.other.key) {
      spec.other.run();
      return "done";
    }
    // Any other key is neither answer: say which keys are, rather than seem to ignore it.
    this.error = `y to go ahead; ${spec.other ? `${spec.other.key} ${spec.other.says}; ` : ""}n, Enter or Esc to leave it`;
    return "open";
  }

  private inputKey(spec: InputSpec, key: string, ch: string | undefined): PromptResult {
    switch (key) {
      case "escape":
      case "C-c":
        spec.onCancel?.();
        return "done";
      case "enter": {
        const error = spec.validate?.(this.value) ?? null;
        if (error) {
          this.error = error;
          return "open";
        }
        spec.onSubmit(this.value);
        return "done";
      }
      case "tab":
        this.edit(spec, this.completed(spec));
        return "open";
      case "backspace":
        this.edit(spec, this.value.slice(0, -1));
        return "open";
      case "C-u":
        this.edit(spec, "");
        return "open";
      case "C-w":
        this.edit(spec, this.value.replace(/\S+\s*$/, ""));
        return "open";
    }
    if (ch !== undefined && ch.length > 0 && !isControl(ch)) this.edit(spec, this.value + ch);
    return "open";
  }

  private completed(spec: InputSpec): string {
    const options = spec.complete?.(this.value) ?? [];
    if (options.length === 1) return options[0] ?? this.value;
    const prefix = commonPrefix(options);
    return prefix.length > this.value.length ? prefix : this.value;
  }

  private edit(spec: InputSpec, value: string): void {
    if (value === this.value) return;
    this.value = value;
    this.error = null;
    spec.onChange?.(value);
  }
}
