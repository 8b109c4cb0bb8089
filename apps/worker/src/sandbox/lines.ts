import type { Readable } from "node:stream";
import { repairText } from "@skiff/protocol";

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** Longest line handed on; a longer one (minified JS, a binary dumped to stdout) is split. */
export const MAX_LINE_BYTES = 64 * 1024;

/**
 * Turns one stream's chunks into lines (without the newline, and without the `\r` of a `\r\n`):
 * keeps a partial line across chunks, splits lines longer than `maxBytes` at a UTF-8 character
 * boundary, and hands on what is left when the stream ends. A job may print any bytes, and every
 * line handed on is text PostgreSQL can store: invalid UTF-8 and NUL become U+FFFD (see `decode`).
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxBytes = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(NEWLINE, start); nl !== -1; nl = chunk.indexOf(NEWLINE, start)) {
      this.hold(chunk.subarray(start, nl));
      this.emitLine(this.take(), true);
      start = nl + 1;
    }
    if (start < chunk.length) this.hold(chunk.subarray(start));
  }

  /** Emits the unterminated last line, if any. */
  end(): void {
    if (this.pendingBytes > 0) this.emitLine(this.take(), false);
  }

  private hold(part: Buffer): void {
    if (part.length === 0) return;
    this.pending.push(part);
    this.pendingBytes += part.length;
    // A line can only be cut once it is known to be longer than the cap, so hold up to the cap.
    if (this.pendingBytes > this.maxBytes) {
      let rest = this.take();
      while (rest.length > this.maxBytes) {
        const cut = utf8Boundary(rest, this.maxBytes);
        this.emit(decode(rest.subarray(0, cut)));
        rest = rest.subarray(cut);
      }
      this.pending = [rest];
      this.pendingBytes = rest.length;
    }
  }

  private take(): Buffer {
    const all =
      this.pending.length === 1 ? (this.pending[0] ?? Buffer.alloc(0)) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    return all;
  }

  private emitLine(line: Buffer, terminated: boolean): void {
    const end =
      terminated && line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN
        ? line.length - 1
        : line.length;
    this.emit(decode(line.subarray(0, end)));
  }
}

/**
 * A line's bytes as text: each invalid UTF-8 sequence becomes U+FFFD (the decoder does that), and
 * so does NUL, which is valid UTF-8 but which PostgreSQL text cannot hold.
 */
function decode(bytes: Buffer): string {
  return repairText(bytes.toString("utf8"));
}

/** The largest cut ≤ `max` that does not fall inside a multi-byte UTF-8 character. */
function utf8Boundary(buf: Buffer, max: number): number {
  let cut = max;
  // Continuation bytes look like 10xxxxxx; back up to the lead byte (at most 3 steps for valid UTF-8).
  while (cut > max - 4 && cut > 0 && ((buf[cut] ?? 0) & 0xc0) === 0x80) cut--;
  return cut > 0 && cut > max - 4 ? cut : max;
}

/**
 * Backpressure from whoever takes a step's lines (the job's reporter): while `full()`, the driver
 * stops reading the step's output, so a fast writer blocks on its pipe instead of having its lines
 * dropped; `room()` settles once reading may go on.
 */
export interface Flow {
  full(): boolean;
  room(): Promise<void>;
}

/** How a driver reads one output source under a `Flow`. */
export interface FlowReader {
  /** Stops honouring backpressure for good (the step is being ended): reading goes on regardless. */
  release(): void;
  /** Whether reading is paused right now, waiting for room. */
  paused(): boolean;
  /** When the source last delivered bytes (ms since the epoch). */
  lastData(): number;
}

/** Feeds `source`'s chunks to `push`, pausing it while `flow` is full. */
export function readWithFlow(
  source: Readable,
  push: (chunk: Buffer) => void,
  flow: Flow | undefined,
): FlowReader {
  let released = false;
  let waiting = false;
  let last = Date.now();
  const resume = () => {
    waiting = false;
    if (!source.destroyed) source.resume();
  };
  source.on("data", (chunk: Buffer) => {
    last = Date.now();
    push(chunk);
    if (flow === undefined || released || waiting || !flow.full()) return;
    waiting = true;
    source.pause();
    flow.room().then(resume, resume);
  });
  return {
    release() {
      released = true;
      if (waiting) resume();
    },
    paused: () => waiting,
    lastData: () => last,
  };
}
