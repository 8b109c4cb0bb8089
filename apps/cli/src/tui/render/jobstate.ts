import type { JobState, StepState } from "@skiff/protocol";
import type { Color, Seg } from "./style.ts";

interface Label {
  symbol: string;
  text: string;
  color: Color;
}

const JOB: Record<JobState, Label> = {
  queued: { symbol: "·", text: "queued", color: "blue" },
  assigned: { symbol: "→", text: "assigned", color: "cyan" },
  running: { symbol: "▶", text: "running", color: "cyan" },
  canceling: { symbol: "■", text: "canceling", color: "yellow" },
  succeeded: { symbol: "✓", text: "succeeded", color: "green" },
  failed: { symbol: "✗", text: "failed", color: "red" },
  canceled: { symbol: "⊘", text: "canceled", color: "yellow" },
  timed_out: { symbol: "✗", text: "timed out", color: "red" },
};

const STEP: Record<StepState, Label> = {
  pending: { symbol: "·", text: "pending", color: "gray" },
  running: { symbol: "▶", text: "running", color: "cyan" },
  succeeded: { symbol: "✓", text: "ok", color: "green" },
  failed: { symbol: "✗", text: "failed", color: "red" },
  skipped: { symbol: "-", text: "skipped", color: "gray" },
  canceled: { symbol: "⊘", text: "canceled", color: "yellow" },
  timed_out: { symbol: "✗", text: "timed out", color: "red" },
};

/** A job's state as a symbol and a word, so it reads the same without colour. */
export function jobStateLabel(state: JobState): Seg {
  const l = JOB[state];
  return { text: `${l.symbol} ${l.text}`, color: l.color };
}

export function stepStateLabel(state: StepState): Seg {
  const l = STEP[state];
  return { text: `${l.symbol} ${l.text}`, color: l.color };
}

/** The exit code cell: blank until there is one, red when it is not zero. */
export function exitCodeCell(code: number | null): Seg {
  if (code === null) return { text: "" };
  return code === 0 ? { text: "0" } : { text: String(code), color: "red" };
}
