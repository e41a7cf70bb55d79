import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServiceRouter } from '@aiva/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMediaClient, type MediaFacts } from '../src/media-client.js';

// A media instance as ai sees it: GraphQL answering `media(id)` with the item set below, and its signed file
// route. The client's reading of an item for transcription is checked against each state media can answer.

type Item = MediaFacts;

const AUDIO = new Uint8Array(Buffer.from('ID3 a few bytes of audio'));
const PERSON = 'person-1';
let item: Item | null = null;
const seen: { authorization?: string; filePath?: string } = {};
let server: Server;
let baseUrl = '';

async function bodyOf(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

beforeAll(async () => {
  server = createServer(async (request, response) => {
    if (request.url === '/graphql' && request.method === 'POST') {
      seen.authorization = request.headers.authorization;
      const { variables } = JSON.parse(await bodyOf(request)) as { variables: { id: string } };
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ data: { media: item && item.id === variables.id ? item : null } }));
      return;
    }
    if (request.url?.startsWith('/media/files/')) {
      seen.filePath = request.url;
      response.writeHead(200, { 'content-type': 'audio/mpeg' });
      response.end(Buffer.from(AUDIO));
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

const client = () =>
  createMediaClient({
    router: new ServiceRouter({ fallback: { media: `${baseUrl}/graphql` } }),
    token: async () => 'service-token-of-ai',
  });

const audio = (overrides: Partial<Item> = {}): Item => ({
  id: 'm-1',
  owner: { id: PERSON },
  kind: 'AUDIO',
  mimeType: 'audio/mpeg',
  filename: 'tone.mp3',
  size: AUDIO.length,
  status: 'READY',
  // The public host, as media signs it: the client keeps the path and query and asks its own instance.
  url: 'https://api.example.com/media/files/m-1/source?expires=1&signature=abc',
  ...overrides,
});

describe("ai's media client reading an item to transcribe", () => {
  it('reads a READY item from the instance, by its signed path, as ai', async () => {
    item = audio();
    const file = await client().readAudio(PERSON, 'm-1', 1000);
    expect(Buffer.from(file.bytes).toString()).toBe(Buffer.from(AUDIO).toString());
    expect(file).toMatchObject({ id: 'm-1', kind: 'AUDIO', mimeType: 'audio/mpeg', filename: 'tone.mp3' });
    expect(seen.filePath).toBe('/media/files/m-1/source?expires=1&signature=abc');
    expect(seen.authorization).toBe('Bearer service-token-of-ai');
  });

  it.each([
    ['AWAITING_UPLOAD', null, 'NOT_UPLOADED', /not been uploaded/],
    ['UPLOADED', null, 'NOT_READY', /still being processed.*READY/],
    ['PROCESSING', null, 'NOT_READY', /still being processed.*READY/],
    ['FAILED', null, 'MEDIA_FAILED', /could not be processed/],
  ])('refuses an item %s with reason %s, naming the field', async (status, url, reason, message) => {
    item = audio({ status, url });
    const refused = client().readAudio(PERSON, 'm-1', 1000);
    await expect(refused).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      extensions: { field: 'mediaId', reason },
    });
    await expect(refused).rejects.toThrow(message);
  });

  it("refuses another person's item, an unknown one, another kind and one over the limit", async () => {
    item = audio();
    await expect(client().readAudio('someone-else', 'm-1', 1000)).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    await expect(client().readAudio(PERSON, 'm-2', 1000)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    item = audio({ kind: 'IMAGE', mimeType: 'image/png' });
    await expect(client().readAudio(PERSON, 'm-1', 1000)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      extensions: { field: 'mediaId' },
    });
    item = audio();
    await expect(client().readAudio(PERSON, 'm-1', AUDIO.length - 1)).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      extensions: { field: 'mediaId', limit: AUDIO.length - 1 },
    });
  });
});
