/** The last `capacity` lines of a stream (a ring buffer), for saying why a process died. */
export class RecentLines {
  private readonly lines: string[] = [];

  constructor(private readonly capacity = 20) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.shift();
  }

  /** The last `count` lines (all kept lines by default), oldest first. */
  last(count = this.capacity): string[] {
    return this.lines.slice(-count);
  }

  clear(): void {
    this.lines.length = 0;
  }
}
