/** One server-sent event as the reply streams send it: its id (the run's sequence number), type and JSON data. */
export interface ReadEvent {
  id: number;
  event: string;
  data: Record<string, unknown>;
}

/**
 * Reads a response's server-sent events until the stream ends or `stopAfter` events came (then the connection
 * is dropped, as a client going away would). Comment lines (heartbeats) are skipped.
 */
export async function readSseEvents(
  response: Response,
  stopAfter = Number.POSITIVE_INFINITY,
): Promise<ReadEvent[]> {
  const events: ReadEvent[] = [];
  const reader = response.body?.getReader();
  if (!reader) throw new Error('no body');
  const decoder = new TextDecoder();
  let buffer = '';
  while (events.length < stopAfter) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const fields = new Map(
        buffer
          .slice(0, end)
          .split('\n')
          .filter((line) => !line.startsWith(':') && line.includes(': '))
          .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)] as const),
      );
      buffer = buffer.slice(end + 2);
      const id = fields.get('id');
      const data = fields.get('data');
      if (id && data)
        events.push({ id: Number(id), event: fields.get('event') ?? '', data: JSON.parse(data) });
    }
  }
  await reader.cancel().catch(() => {});
  return events;
}
