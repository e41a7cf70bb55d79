import { uuidv7 } from '@aiva/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type {
  AiStore,
  ConversationRecord,
  DocumentRecord,
  MessageRecord,
  ReplyOutcome,
} from '../../src/store/ai.store.js';

const T0 = new Date('2026-11-27T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

export function conversation(
  ownerId: string,
  overrides: Partial<ConversationRecord> = {},
): ConversationRecord {
  return { id: uuidv7(), ownerId, title: 'A chat', model: null, createdAt: T0, updatedAt: T0, ...overrides };
}

export function message(c: ConversationRecord, overrides: Partial<MessageRecord> = {}): MessageRecord {
  return {
    id: uuidv7(),
    conversationId: c.id,
    ownerId: c.ownerId,
    role: 'user',
    content: 'Hello?',
    status: 'complete',
    citations: [],
    usage: null,
    provider: null,
    model: null,
    error: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

const done: ReplyOutcome = {
  content: 'Hi there [1].',
  status: 'complete',
  citations: [
    {
      index: 1,
      sourceType: 'note',
      sourceId: 'n-1',
      title: 'Greetings',
      chunkIndex: 0,
      score: 0.82,
      excerpt: 'Hi there is how people greet',
    },
  ],
  usage: { inputTokens: 12, outputTokens: 4 },
  provider: 'openai',
  model: 'gpt-4o-mini',
  error: null,
};

/** The AI store's contract, run against each adapter. */
export function aiStoreContract(
  name: string,
  open: () => Promise<{ store: AiStore; cleanup(): Promise<void> }>,
) {
  describe(`ai store contract: ${name}`, () => {
    let opened: Awaited<ReturnType<typeof open>>;
    let store: AiStore;
    beforeAll(async () => {
      opened = await open();
      store = opened.store;
    });
    afterAll(async () => {
      await store?.close();
      await opened?.cleanup();
    });

    it("lists a person's conversations newest first, in pages, and only theirs", async () => {
      const owner = uuidv7();
      const mine = [conversation(owner), conversation(owner), conversation(owner)];
      for (const c of mine) await store.createConversation(c);
      await store.createConversation(conversation(uuidv7()));
      const first = await store.listConversations(owner, { first: 2 });
      expect(first.items.map((c) => c.id)).toEqual([mine[2]?.id, mine[1]?.id]);
      expect(first.hasNextPage).toBe(true);
      const rest = await store.listConversations(owner, { first: 2, beforeId: mine[1]?.id });
      expect(rest.items.map((c) => c.id)).toEqual([mine[0]?.id]);
      expect(rest.hasNextPage).toBe(false);
      expect(await store.findConversation(mine[0]?.id ?? '')).toEqual(mine[0]);
    });

    it('keeps an exchange in order, finishes a streaming reply once, and finds replies whose writer died', async () => {
      const c = conversation(uuidv7());
      await store.createConversation(c);
      const question = message(c, { createdAt: at(1000), updatedAt: at(1000) });
      const reply = message(c, {
        role: 'assistant',
        content: '',
        status: 'streaming',
        createdAt: at(1000),
        updatedAt: at(1000),
      });
      await store.addExchange(question, reply);
      expect((await store.findConversation(c.id))?.updatedAt).toEqual(at(1000));
      expect((await store.staleReplies(at(5000), 10)).map((m) => m.id)).toContain(reply.id);
      expect(await store.finishReply(reply.id, done, at(2000))).toBe(true);
      expect(await store.finishReply(reply.id, { ...done, content: 'again' }, at(3000))).toBe(false);
      expect(await store.findMessage(reply.id)).toEqual({ ...reply, ...done, updatedAt: at(2000) });
      expect((await store.staleReplies(at(5000), 10)).map((m) => m.id)).not.toContain(reply.id);
      const listed = await store.listMessages(c.id, { first: 10 });
      expect(listed.items.map((m) => m.id)).toEqual([question.id, reply.id]);
      const after = await store.listMessages(c.id, { first: 10, afterId: question.id });
      expect(after.items.map((m) => m.id)).toEqual([reply.id]);
      for (let i = 0; i < 3; i++) {
        await store.addExchange(message(c), message(c, { role: 'assistant' }));
      }
      const recent = await store.recentMessages(c.id, 3);
      expect(recent).toHaveLength(3);
      expect(recent.map((m) => m.id)).toEqual([...recent.map((m) => m.id)].sort());
      expect(recent.at(-1)?.role).toBe('assistant');
    });

    it('deletes a conversation with its messages', async () => {
      const c = conversation(uuidv7());
      await store.createConversation(c);
      await store.addExchange(message(c), message(c, { role: 'assistant' }));
      expect((await store.deleteConversation(c.id))?.id).toBe(c.id);
      expect(await store.deleteConversation(c.id)).toBeNull();
      expect((await store.listMessages(c.id, { first: 10 })).items).toEqual([]);
    });

    it('keeps one document per source of a person, replaced when indexed again, and removes it', async () => {
      const owner = uuidv7();
      const doc: DocumentRecord = {
        id: uuidv7(),
        ownerId: owner,
        sourceType: 'media',
        sourceId: uuidv7(),
        title: 'report.pdf',
        chunkCount: 3,
        embeddingModel: 'aiva-lexical-v1',
        dimensions: 384,
        createdAt: T0,
      };
      expect(await store.saveDocument(doc)).toEqual(doc);
      const again = await store.saveDocument({ ...doc, id: uuidv7(), chunkCount: 5, createdAt: at(1) });
      expect(again).toMatchObject({ id: doc.id, chunkCount: 5 });
      expect(await store.findDocument(owner, 'media', doc.sourceId)).toMatchObject({ chunkCount: 5 });
      expect(await store.findDocument(uuidv7(), 'media', doc.sourceId)).toBeNull();
      expect((await store.findDocuments([doc.id])).map((d) => d.id)).toEqual([doc.id]);
      expect((await store.listDocuments(owner, { first: 10 })).items).toHaveLength(1);
      expect((await store.removeDocument(owner, 'media', doc.sourceId))?.id).toBe(doc.id);
      expect(await store.removeDocument(owner, 'media', doc.sourceId)).toBeNull();
    });

    it('adds up usage per person, capability and day, and totals a day for admins', async () => {
      const [a, b] = [uuidv7(), uuidv7()];
      const day = '2026-11-27';
      await store.addUsage(a, day, 'chat', { requests: 1, inputTokens: 10, outputTokens: 5 });
      const total = await store.addUsage(a, day, 'chat', { requests: 1, inputTokens: 3, outputTokens: 2 });
      expect(total).toEqual({
        ownerId: a,
        day,
        capability: 'chat',
        requests: 2,
        inputTokens: 13,
        outputTokens: 7,
      });
      await store.addUsage(a, day, 'embedding', { requests: 1, inputTokens: 50, outputTokens: 0 });
      await store.addUsage(b, day, 'chat', { requests: 1, inputTokens: 1, outputTokens: 1 });
      await store.addUsage(a, '2026-11-28', 'chat', { requests: 1, inputTokens: 1, outputTokens: 1 });
      expect((await store.usageOf(a, day)).map((u) => [u.capability, u.requests])).toEqual([
        ['chat', 2],
        ['embedding', 1],
      ]);
      const totals = await store.usageTotals(day);
      expect(totals.find((t) => t.capability === 'chat')).toMatchObject({
        requests: 3,
        people: 2,
        inputTokens: 14,
      });
    });

    it('applies a consumed event once, and removes everything of a person once', async () => {
      let runs = 0;
      const event = uuidv7();
      expect(await store.once('ai.test', event, () => void runs++)).toBe(true);
      expect(await store.once('ai.test', event, () => void runs++)).toBe(false);
      expect(runs).toBe(1);
      // A failing effect records nothing: the redelivery runs it again.
      const failing = uuidv7();
      await expect(
        store.once('ai.test', failing, () => Promise.reject(new Error('vector store down'))),
      ).rejects.toThrow();
      expect(await store.once('ai.test', failing, () => void runs++)).toBe(true);

      const owner = uuidv7();
      const c = conversation(owner);
      await store.createConversation(c);
      await store.addExchange(message(c), message(c, { role: 'assistant' }));
      await store.addUsage(owner, '2026-11-27', 'chat', { requests: 1, inputTokens: 1, outputTokens: 1 });
      const removal = uuidv7();
      expect(await store.removeOwner('ai.account-removal', removal, owner)).toBe(true);
      expect(await store.removeOwner('ai.account-removal', removal, owner)).toBe(false);
      expect(await store.findConversation(c.id)).toBeNull();
      expect((await store.listMessages(c.id, { first: 10 })).items).toEqual([]);
      expect(await store.usageOf(owner, '2026-11-27')).toEqual([]);
    });
  });
}
