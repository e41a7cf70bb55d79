import { bearer, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSseEvents } from '../../subgraphs/ai/test/streams/sse-reader.js';
import { buildPdf } from '../../subgraphs/media/test/processing/fixtures.js';
import { type ChatServer, startChatServer } from '../helpers/openai-chat-server.js';
import { accountKit, codeOf } from '../helpers/security-kit.js';
import { tusUpload } from '../helpers/tus.js';
import { type RunningSystem, startSystem } from './helpers/system.js';

// The AI subgraph as `pnpm start` runs it (its own process, its stream route on the gateway's public port), its
// chat model a local server speaking OpenAI's wire format (as a local Ollama would): replies stream as
// server-sent events through the gateway, resume after a dropped connection, and are stored; knowledge is the
// person's own and grounds the replies that ask for it; the daily quota holds.

const DELTAS = Array.from({ length: 12 }, (_, i) => `word${i} `);
const QUOTA = 6;
let chat: ChatServer;
let system: RunningSystem;
const kit = accountKit(() => system.gatewayUrl, 'ai');

beforeAll(async () => {
  chat = await startChatServer({ deltas: DELTAS, intervalMs: 60 });
  system = await startSystem({
    env: {
      OPENAI_COMPATIBLE_BASE_URL: chat.url,
      OPENAI_COMPATIBLE_NAME: 'ollama',
      AI_CHAT_MODELS: 'ollama:llama3.2',
      AI_DAILY_REQUESTS: String(QUOTA),
    },
  });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  await chat?.close();
});

const SEND = `mutation Send($conversationId: ID!, $content: String!, $useKnowledge: Boolean) {
  sendMessage(conversationId: $conversationId, content: $content, useKnowledge: $useKnowledge) {
    message { id role content } reply { id status } stream { id url }
  }
}`;
const CONVERSATION = `query C($id: ID!) {
  conversation(id: $id) { id messages { edges { node { id role content status model usage { inputTokens outputTokens }
    citations { index title sourceType score excerpt } } } } }
}`;

interface Sent {
  sendMessage: {
    message: { id: string };
    reply: { id: string; status: string };
    stream: { id: string; url: string };
  };
}

async function conversationOf(token: string) {
  const created = await kit.call<{ createConversation: { id: string } }>(
    'mutation { createConversation(input: { title: "Test" }) { id } }',
    {},
    token,
  );
  expect(created.body.errors).toBeUndefined();
  return created.body.data?.createConversation.id ?? '';
}

const textOf = (list: Array<{ event: string; data: Record<string, unknown> }>) =>
  list
    .filter((e) => e.event === 'delta')
    .map((e) => String(e.data.text))
    .join('');

describe('the AI subgraph through the gateway', { timeout: 120_000 }, () => {
  it('streams a reply as server-sent events and stores it with its usage', async () => {
    const person = await kit.signUp();
    const conversationId = await conversationOf(person.accessToken);
    const sent = await kit.call<Sent>(SEND, { conversationId, content: 'Say something' }, person.accessToken);
    expect(sent.body.errors).toBeUndefined();
    const { reply, stream } = sent.body.data?.sendMessage ?? {
      reply: { id: '', status: '' },
      stream: { url: '' },
    };
    expect(reply.status).toBe('STREAMING');
    expect(stream.url).toBe(`http://127.0.0.1:${system.ports.gateway}/ai/streams/${reply.id}`);
    const response = await fetch(stream.url, { headers: bearer(person.accessToken) });
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const all = await readSseEvents(response);
    expect(textOf(all)).toBe(DELTAS.join(''));
    expect(all.at(-1)).toMatchObject({ event: 'done', data: { messageId: reply.id } });
    expect(all.map((e) => e.id)).toEqual(all.map((_, i) => i + 1));

    const stored = await kit.call<{
      conversation: { messages: { edges: Array<{ node: Record<string, unknown> }> } };
    }>(CONVERSATION, { id: conversationId }, person.accessToken);
    const nodes = stored.body.data?.conversation.messages.edges.map((e) => e.node) ?? [];
    expect(nodes.map((n) => [n.role, n.status])).toEqual([
      ['USER', 'COMPLETE'],
      ['ASSISTANT', 'COMPLETE'],
    ]);
    expect(nodes[1]).toMatchObject({
      content: DELTAS.join(''),
      model: 'ollama:llama3.2',
      usage: { inputTokens: 20, outputTokens: DELTAS.length },
    });
    // The model got the person's message.
    const sentToModel = chat.requests.at(-1)?.messages as Array<{ role: string; content: unknown }>;
    expect(JSON.stringify(sentToModel)).toContain('Say something');
  });

  it('resumes a dropped stream after the last event id it saw', async () => {
    const person = await kit.signUp();
    const conversationId = await conversationOf(person.accessToken);
    const sent = await kit.call<Sent>(SEND, { conversationId, content: 'Go on' }, person.accessToken);
    const url = sent.body.data?.sendMessage.stream.url ?? '';
    const first = await readSseEvents(await fetch(url, { headers: bearer(person.accessToken) }), 3);
    expect(first.map((e) => e.id)).toEqual([1, 2, 3]);
    const rest = await readSseEvents(
      await fetch(url, { headers: { ...bearer(person.accessToken), 'last-event-id': '3' } }),
    );
    expect(rest[0]?.id).toBe(4);
    expect(textOf([...first, ...rest])).toBe(DELTAS.join(''));
    expect(rest.at(-1)?.event).toBe('done');
  });

  it("keeps a person's conversations, streams and knowledge to themself", async () => {
    const owner = await kit.signUp();
    const other = await kit.signUp();
    const conversationId = await conversationOf(owner.accessToken);
    const sent = await kit.call<Sent>(SEND, { conversationId, content: 'Private' }, owner.accessToken);
    const url = sent.body.data?.sendMessage.stream.url ?? '';
    expect(codeOf(await kit.call(CONVERSATION, { id: conversationId }, other.accessToken))).toBe('FORBIDDEN');
    expect((await fetch(url, { headers: bearer(other.accessToken) })).status).toBe(404);
    expect((await fetch(url)).status).toBe(401);
    expect(codeOf(await kit.call(SEND, { conversationId, content: 'Mine now' }, other.accessToken))).toBe(
      'FORBIDDEN',
    );

    const indexed = await kit.call(
      'mutation($t: String!) { indexDocument(input: { title: "Secret recipe", text: $t }) { id chunkCount } }',
      { t: 'The secret sauce is tamarind, smoked paprika and a pinch of saffron.' },
      owner.accessToken,
    );
    expect(indexed.body.errors).toBeUndefined();
    const search = 'query($q: String!) { semanticSearch(query: $q) { title text score } }';
    const mine = await kit.call<{ semanticSearch: Array<{ title: string }> }>(
      search,
      { q: 'saffron sauce' },
      owner.accessToken,
    );
    expect(mine.body.data?.semanticSearch[0]?.title).toBe('Secret recipe');
    const theirs = await kit.call<{ semanticSearch: unknown[] }>(
      search,
      { q: 'saffron sauce' },
      other.accessToken,
    );
    expect(theirs.body.data?.semanticSearch).toEqual([]);
  });

  it("grounds a reply in the person's knowledge when asked, and cites it", async () => {
    const person = await kit.signUp();
    await kit.call(
      'mutation($t: String!) { indexDocument(input: { title: "Aurora notes", text: $t }) { id } }',
      { t: 'Auroras appear when charged particles from the sun strike the upper atmosphere near the poles.' },
      person.accessToken,
    );
    const conversationId = await conversationOf(person.accessToken);
    const sent = await kit.call<Sent>(
      SEND,
      { conversationId, content: 'Why do auroras appear near the poles?', useKnowledge: true },
      person.accessToken,
    );
    const all = await readSseEvents(
      await fetch(sent.body.data?.sendMessage.stream.url ?? '', { headers: bearer(person.accessToken) }),
    );
    expect(all.at(-1)?.event).toBe('done');
    const system = JSON.stringify(chat.requests.at(-1)?.messages);
    expect(system).toContain('charged particles from the sun');
    const stored = await kit.call<{
      conversation: {
        messages: { edges: Array<{ node: { citations: Array<{ title: string; sourceType: string }> } }> };
      };
    }>(CONVERSATION, { id: conversationId }, person.accessToken);
    const citations = stored.body.data?.conversation.messages.edges.at(-1)?.node.citations ?? [];
    expect(citations[0]).toMatchObject({ title: 'Aurora notes', sourceType: 'NOTE' });
  });

  it('makes a PDF uploaded through media searchable, and forgets it when it is deleted', async () => {
    const person = await kit.signUp();
    const pdf = buildPdf(['Glacier survey', 'The Perito Moreno glacier advances two metres a day.']);
    const created = await kit.call<{ createUpload: { uploadUrl: string; media: { id: string } } }>(
      'mutation($input: CreateUploadInput!) { createUpload(input: $input) { uploadUrl media { id } } }',
      { input: { filename: 'survey.pdf', mimeType: 'application/pdf', size: pdf.length } },
      person.accessToken,
    );
    const { uploadUrl, media } = created.body.data?.createUpload ?? { uploadUrl: '', media: { id: '' } };
    expect((await tusUpload(uploadUrl, pdf)).status).toBe(204);
    const search =
      'query($q: String!) { semanticSearch(query: $q) { title sourceType sourceId media { id } } }';
    type Hits = {
      semanticSearch: Array<{
        title: string;
        sourceType: string;
        sourceId: string;
        media: { id: string } | null;
      }>;
    };
    const hit = await waitFor(
      async () =>
        (await kit.call<Hits>(search, { q: 'Perito Moreno glacier' }, person.accessToken)).body.data
          ?.semanticSearch[0],
      60_000,
      'the PDF to be indexed',
    );
    expect(hit).toMatchObject({
      title: 'survey.pdf',
      sourceType: 'MEDIA',
      sourceId: media.id,
      media: { id: media.id },
    });
    const deleted = await kit.call(
      'mutation($id: ID!) { deleteMedia(id: $id) }',
      { id: media.id },
      person.accessToken,
    );
    expect(deleted.body.errors).toBeUndefined();
    await waitFor(
      async () =>
        (await kit.call<Hits>(search, { q: 'Perito Moreno glacier' }, person.accessToken)).body.data
          ?.semanticSearch.length === 0,
      60_000,
      'the PDF to leave the knowledge',
    );
  });

  it('refuses a message once the daily quota is spent, saying when it renews', async () => {
    const person = await kit.signUp();
    const conversationId = await conversationOf(person.accessToken);
    for (let i = 0; i < QUOTA; i++) {
      const sent = await kit.call<Sent>(
        SEND,
        { conversationId, content: `Message ${i}` },
        person.accessToken,
      );
      expect(sent.body.errors).toBeUndefined();
      await readSseEvents(
        await fetch(sent.body.data?.sendMessage.stream.url ?? '', { headers: bearer(person.accessToken) }),
      );
    }
    await waitFor(
      async () => {
        const usage = await kit.call<{ me: { aiUsage: Array<{ capability: string; requests: number }> } }>(
          '{ me { aiUsage { capability requests } } }',
          {},
          person.accessToken,
        );
        return usage.body.data?.me.aiUsage.find((u) => u.capability === 'chat')?.requests === QUOTA;
      },
      10_000,
      'the usage to be recorded',
    );
    const refused = await kit.call(SEND, { conversationId, content: 'One more' }, person.accessToken);
    expect(codeOf(refused)).toBe('RATE_LIMITED');
    expect(refused.body.errors?.[0]?.extensions?.retryAfter).toBeGreaterThan(0);
  });
});
