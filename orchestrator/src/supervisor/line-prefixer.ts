import { StringDecoder } from 'node:string_decoder';

/** Where prefixed lines go: process.stdout or any stream with a `write`. */
export interface LineSink {
  write(text: string): unknown;
}

/** Longest line held back waiting for its newline; a longer one is written in pieces of this size. */
export const MAX_HELD_LINE_LENGTH = 64 * 1024;

/** `users#2 │ ` with the label padded to `width`, so the lines of every process line up. */
export function linePrefix(label: string, width: number): string {
  return `${label.padEnd(width)} │ `;
}

/**
 * Turns one output stream of a child into whole prefixed lines. A partial line is held until its newline
 * arrives (or `flush()` at the end of the stream), so lines of different processes never interleave mid-line;
 * each `write` to the sink carries whole lines only. Multi-byte characters split across chunks are kept whole.
 */
export class LinePrefixer {
  private readonly decoder = new StringDecoder('utf8');
  private held = '';

  constructor(
    private readonly prefix: string,
    private readonly sink: LineSink,
    /** Also told each line (without prefix), e.g. to keep the last lines for a crash report. */
    private readonly onLine: (line: string) => void = () => {},
  ) {}

  write(chunk: Buffer | string): void {
    const text = this.held + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    const parts = text.split('\n');
    this.held = parts.pop() ?? '';
    while (this.held.length > MAX_HELD_LINE_LENGTH) {
      parts.push(this.held.slice(0, MAX_HELD_LINE_LENGTH));
      this.held = this.held.slice(MAX_HELD_LINE_LENGTH);
    }
    this.emit(parts);
  }

  /** Writes what is held (the stream ended without a final newline). */
  flush(): void {
    const rest = this.held + this.decoder.end();
    this.held = '';
    if (rest !== '') this.emit([rest]);
  }

  private emit(lines: string[]): void {
    if (lines.length === 0) return;
    let out = '';
    for (const raw of lines) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      this.onLine(line);
      out += `${this.prefix}${line}\n`;
    }
    this.sink.write(out);
  }
}
