import type { Prompt } from "../model/prompt.ts";
import type { Line } from "./style.ts";
import { truncate } from "./text.ts";

/** The footer while a prompt is open: the question or label, what is typed, and help for it. */
export function promptLine(p: Prompt, width: number): Line {
  if (p.spec.kind === "confirm")
    return [
      { text: p.spec.question, color: "yellow", bold: true },
      { text: " [y/N]", bold: true },
      ...(p.error ? [{ text: `  ${p.error}`, color: "red" as const }] : []),
    ];
  const line: Line = [{ text: p.spec.label, bold: true }, { text: p.value }, { text: " ", inverse: true }];
  if (p.error) line.push({ text: `  ${p.error}`, color: "red" });
  else {
    const options = p.completions();
    if (options.length > 1 || (options.length === 1 && options[0] !== p.value))
      line.push({
        text: `  ${truncate(options.join("  "), Math.max(10, width - p.value.length - 20))}`,
        color: "gray",
      });
  }
  return line;
}
