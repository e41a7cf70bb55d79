import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bearer, waitFor } from '@aiva/shared/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSseEvents } from '../../subgraphs/ai/test/streams/sse-reader.js';
import {
  buildPdf,
  makeTempDir,
  writePng,
  writeTestAudio,
} from '../../subgraphs/media/test/processing/fixtures.js';
import { type ChatServer, startChatServer } from '../helpers/openai-chat-server.js';
import { accountKit, codeOf } from '../helpers/security-kit.js';
import { tusUpload } from '../helpers/tus.js';
import { type RunningSystem, startSystem } from './helpers/system.js';

// The AI subgraph as `pnpm start` runs it (its own process, its stream route on the gateway's public port), its
// chat model a local server speaking OpenAI's wire format (as a local Ollama would): replies stream as
// server-sent events through the gateway, resume after a dropped connection, and are stored; knowledge is the
// person's own and grounds the replies that ask for it; the daily quota holds. The same server, as OpenAI, makes
// images and speech (a real PNG and MP3), which ai stores through media's upload flow as the person's media (with
// a service token auth issued for ai's credential), and transcribes the person's audio, read from media.

const DELTAS = Array.from({ length: 12 }, (_, i) => `word${i} `);
const QUOTA = 6;
let chat: ChatServer;
let system: RunningSystem;
const kit = accountKit(() => system.gatewayUrl, 'ai');

/** A media item once media is done with it (READY or FAILED), as its owner sees it. */
function processed(id: string, token: string) {
  type Item = {
    media: { status: string; variants: Array<{ name: string }>; durationSeconds: number | null };
  };
  return waitFor(
    async () => {
      const item = await kit.call<Item>(
        'query($id: ID!) { media(id: $id) { status durationSeconds variants { name } } }',
        { id },
        token,
      );
      const media = item.body.data?.media;
      return media?.status === 'READY' || media?.status === 'FAILED' ? media : undefined;
    },
    60_000,
    'media to process it',
  );
}

/** The person's knowledge nearest to `q`, with each hit's source. */
const SEARCH =
  'query($q: String!) { semanticSearch(query: $q) { title text sourceType sourceId media { id } } }';
type Hits = {
  semanticSearch: Array<{
    title: string;
    text: string;
    sourceType: string;
    sourceId: string;
    media: { id: string } | null;
  }>;
};

let files: { dir: string; cleanup: () => Promise<void> };
/** A 2-second tone as MP3, what the speech route answers and what a person uploads to transcribe. */
let mp3: Buffer;

beforeAll(async () => {
  files = await makeTempDir('ai-system');
  await writePng(join(files.dir, 'made.png'), 320, 200);
  await writeTestAudio(join(files.dir, 'tone.mp3'), 2);
  mp3 = await readFile(join(files.dir, 'tone.mp3'));
  chat = await startChatServer({
    deltas: DELTAS,
    intervalMs: 60,
    image: await readFile(join(files.dir, 'made.png')),
    speech: { bytes: mp3, mimeType: 'audio/mpeg' },
  });
  system = await startSystem({
    env: {
      OPENAI_COMPATIBLE_BASE_URL: chat.url,
      OPENAI_COMPATIBLE_NAME: 'ollama',
      AI_CHAT_MODELS: 'ollama:llama3.2',
      // The same server as OpenAI, for images, speech and transcription; embeddings stay local (lexical).
      OPENAI_API_KEY: 'sk-test-not-a-real-key',
      OPENAI_BASE_URL: chat.url,
      AI_IMAGE_MODELS: 'openai:gpt-image-1',
      AI_SPEECH_MODELS: 'openai:gpt-4o-mini-tts',
      AI_TRANSCRIPTION_MODELS: 'openai:whisper-1',
      AI_EMBEDDING_MODELS: 'none',
      AI_DAILY_REQUESTS: String(QUOTA),
    },
  });
}, 120_000);

afterAll(async () => {
  await system?.stop('SIGKILL');
  await chat?.close();
  await files?.cleanup();
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
    const mine = await kit.call<Hits>(SEARCH, { q: 'saffron sauce' }, owner.accessToken);
    expect(mine.body.data?.semanticSearch[0]?.title).toBe('Secret recipe');
    const theirs = await kit.call<Hits>(SEARCH, { q: 'saffron sauce' }, other.accessToken);
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
    const hit = await waitFor(
      async () =>
        (await kit.call<Hits>(SEARCH, { q: 'Perito Moreno glacier' }, person.accessToken)).body.data
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
        (await kit.call<Hits>(SEARCH, { q: 'Perito Moreno glacier' }, person.accessToken)).body.data
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

  it("stores a generated image and speech as the person's media, processed by media", async () => {
    const person = await kit.signUp();
    type Made = {
      media: { id: string; kind: string; mimeType: string; owner: { id: string } };
      model: string;
    };
    const image = await kit.call<{ generateImage: Made }>(
      `mutation($prompt: String!) {
        generateImage(prompt: $prompt, size: "1024x1024") { model media { id kind mimeType owner { id } } }
      }`,
      { prompt: 'A lighthouse at dusk' },
      person.accessToken,
    );
    expect(image.body.errors).toBeUndefined();
    expect(image.body.data?.generateImage).toMatchObject({
      model: 'openai:gpt-image-1',
      media: { kind: 'IMAGE', mimeType: 'image/png', owner: { id: person.user.id } },
    });
    expect(chat.calls.find((c) => c.path === '/v1/images/generations')?.body).toMatchObject({
      prompt: 'A lighthouse at dusk',
      size: '1024x1024',
    });
    const speech = await kit.call<{ synthesizeSpeech: Made }>(
      `mutation { synthesizeSpeech(text: "Good evening", voice: "alloy") {
        model media { id kind mimeType owner { id } } } }`,
      {},
      person.accessToken,
    );
    expect(speech.body.errors).toBeUndefined();
    expect(speech.body.data?.synthesizeSpeech).toMatchObject({
      model: 'openai:gpt-4o-mini-tts',
      media: { kind: 'AUDIO', mimeType: 'audio/mpeg', owner: { id: person.user.id } },
    });
    expect(chat.calls.find((c) => c.path === '/v1/audio/speech')?.body).toMatchObject({
      input: 'Good evening',
      voice: 'alloy',
    });

    // Media processes them like any upload: renditions of the image, the duration of the audio.
    const imageItem = await processed(image.body.data?.generateImage.media.id ?? '', person.accessToken);
    expect(imageItem.status).toBe('READY');
    expect(imageItem.variants.map((v) => v.name)).toContain('thumbnail.webp');
    const audioItem = await processed(speech.body.data?.synthesizeSpeech.media.id ?? '', person.accessToken);
    expect(audioItem.status).toBe('READY');
    expect(audioItem.durationSeconds).toBeGreaterThan(1.5);

    // Another person sees neither.
    const other = await kit.signUp();
    const peek = await kit.call(
      'query($id: ID!) { media(id: $id) { id } }',
      { id: image.body.data?.generateImage.media.id },
      other.accessToken,
    );
    expect(codeOf(peek)).toBe('FORBIDDEN');
  });

  it("transcribes the person's own audio, and no one else's, into their knowledge when asked", async () => {
    const person = await kit.signUp();
    const created = await kit.call<{ createUpload: { uploadUrl: string; media: { id: string } } }>(
      'mutation($input: CreateUploadInput!) { createUpload(input: $input) { uploadUrl media { id } } }',
      { input: { filename: 'tone.mp3', mimeType: 'audio/mpeg', size: mp3.length } },
      person.accessToken,
    );
    const { uploadUrl, media } = created.body.data?.createUpload ?? { uploadUrl: '', media: { id: '' } };
    expect((await tusUpload(uploadUrl, mp3)).status).toBe(204);
    // Its file can be read once media has processed it (before that: BAD_USER_INPUT, reason NOT_READY).
    expect((await processed(media.id, person.accessToken)).status).toBe('READY');
    const TRANSCRIBE =
      'mutation($id: ID!) { transcribe(mediaId: $id) { text durationSeconds model media { id filename } } }';
    const heard = await kit.call<{
      transcribe: {
        text: string;
        durationSeconds: number;
        model: string;
        media: { id: string; filename: string };
      };
    }>(TRANSCRIBE, { id: media.id }, person.accessToken);
    expect(heard.body.errors).toBeUndefined();
    // The provider got the uploaded bytes, whole, as what media found them to be.
    expect(heard.body.data?.transcribe).toEqual({
      text: `heard ${mp3.length} bytes of audio/mpeg`,
      durationSeconds: 2,
      model: 'openai:whisper-1',
      media: { id: media.id, filename: 'tone.mp3' },
    });
    // Not asked to: the transcript is returned, not kept.
    const before = await kit.call<Hits>(SEARCH, { q: 'heard audio' }, person.accessToken);
    expect(before.body.data?.semanticSearch).toEqual([]);

    // Asked to: it joins the person's knowledge under the media item, searchable at once, and only theirs.
    const kept = await kit.call<{
      transcribe: { document: { sourceType: string; sourceId: string; title: string; chunkCount: number } };
    }>(
      'mutation($id: ID!) { transcribe(mediaId: $id, addToKnowledge: true) { document { sourceType sourceId title chunkCount } } }',
      { id: media.id },
      person.accessToken,
    );
    expect(kept.body.errors).toBeUndefined();
    expect(kept.body.data?.transcribe.document).toEqual({
      sourceType: 'MEDIA',
      sourceId: media.id,
      title: 'tone.mp3',
      chunkCount: 1,
    });
    const found = await kit.call<Hits>(SEARCH, { q: 'heard audio' }, person.accessToken);
    expect(found.body.data?.semanticSearch).toEqual([
      {
        title: 'tone.mp3',
        text: `heard ${mp3.length} bytes of audio/mpeg`,
        sourceType: 'MEDIA',
        sourceId: media.id,
        media: { id: media.id },
      },
    ]);
    // Transcribed again, it replaces its earlier transcript instead of adding a second.
    await kit.call(
      'mutation($id: ID!) { transcribe(mediaId: $id, addToKnowledge: true) { text } }',
      { id: media.id },
      person.accessToken,
    );
    const documents = await kit.call<{ knowledgeDocuments: Array<{ sourceId: string }> }>(
      '{ knowledgeDocuments { sourceId } }',
      {},
      person.accessToken,
    );
    expect(documents.body.data?.knowledgeDocuments).toEqual([{ sourceId: media.id }]);

    const other = await kit.signUp();
    expect(codeOf(await kit.call(TRANSCRIBE, { id: media.id }, other.accessToken))).toBe('FORBIDDEN');
    expect(codeOf(await kit.call(TRANSCRIBE, { id: randomUUID() }, person.accessToken))).toBe('NOT_FOUND');
    const theirs = await kit.call<Hits>(SEARCH, { q: 'heard audio' }, other.accessToken);
    expect(theirs.body.data?.semanticSearch).toEqual([]);
  });

  it('keeps the chat model a conversation asked for, and refuses one that is not configured', async () => {
    const person = await kit.signUp();
    const create = 'mutation($m: String) { createConversation(input: { model: $m }) { id model } }';
    const chosen = await kit.call<{ createConversation: { model: string } }>(
      create,
      { m: 'ollama:llama3.2' },
      person.accessToken,
    );
    expect(chosen.body.data?.createConversation.model).toBe('ollama:llama3.2');
    const refused = await kit.call(create, { m: 'openai:gpt-4o' }, person.accessToken);
    expect(codeOf(refused)).toBe('BAD_USER_INPUT');
    expect(refused.body.errors?.[0]?.extensions?.field).toBe('model');
    expect(refused.body.errors?.[0]?.message).toContain('ollama:llama3.2');
  });

  it('refuses prompts and texts over their limits before any provider is called', async () => {
    const person = await kit.signUp();
    const calls = chat.calls.length;
    const long = await kit.call(
      'mutation($p: String!) { generateImage(prompt: $p) { model } }',
      { p: 'x'.repeat(4_001) },
      person.accessToken,
    );
    expect(codeOf(long)).toBe('BAD_USER_INPUT');
    expect(long.body.errors?.[0]?.extensions?.field).toBe('prompt');
    const badVoice = await kit.call(
      'mutation { synthesizeSpeech(text: "Hi", voice: "../etc") { model } }',
      {},
      person.accessToken,
    );
    expect(codeOf(badVoice)).toBe('BAD_USER_INPUT');
    expect(chat.calls.length).toBe(calls);
  });
});
