import { uuidv7 } from '@aiva/shared';
import { describeMongo } from '@aiva/shared/testing';
import mongoose from 'mongoose';
import { afterAll, describe, expect, it } from 'vitest';
import type { DocumentRecord } from '../../src/store/ai.store.js';
import { aiCollections, connectMongoAiStore, registerAiModels } from '../../src/store/mongo.js';
import { aiStoreContract, conversation, message } from './ai.store.contract.js';

// The one infrastructure gate of these tests: there is no MongoDB server unless MONGODB_URL points at one.
describeMongo('MongoDB ai store', { dbPrefix: 'aiva_ai_test' }, (mongo) => {
  aiStoreContract('mongo', async () => ({
    store: await connectMongoAiStore({ url: mongo.url, dbName: mongo.freshDbName() }),
    // The contract closes the store; the database is dropped when the suite is done.
    cleanup: async () => {},
  }));
});

describe('MongoDB ai store without a server', () => {
  it('rejects when no server answers', async () => {
    await expect(
      connectMongoAiStore({
        url: 'mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200',
      }),
    ).rejects.toThrow();
  });
});

// Server-free checks of the documents the store writes: mongoose validates and serialises them without a server.
describe('MongoDB ai store documents', () => {
  const connection = mongoose.createConnection(); // never connected
  const models = registerAiModels(connection);
  const { conversations, messages, documents } = aiCollections(models);

  afterAll(async () => {
    await connection.close();
  });

  it('stores conversations as given: empty titles, with or without a model', () => {
    const ownerId = uuidv7();
    for (const record of [
      conversation(ownerId, { title: '' }),
      conversation(ownerId, { model: 'openai:gpt-4o-mini' }),
    ]) {
      const doc = new models.Conversation(conversations.toDoc(record));
      expect(doc.validateSync()).toBeUndefined();
      const stored = doc.toBSON(); // what the driver is given
      const { id, ...fields } = record;
      expect(stored).toEqual({ _id: id, ...fields });
      expect(conversations.fromDoc(stored)).toEqual(record);
    }
  });

  it('stores messages as given: an empty streaming reply, and a finished one with citations and usage', () => {
    const c = conversation(uuidv7());
    const streaming = message(c, { role: 'assistant', content: '', status: 'streaming' });
    const finished = message(c, {
      role: 'assistant',
      content: 'Hi there [1].',
      citations: [
        {
          index: 1,
          sourceType: 'media',
          sourceId: uuidv7(),
          title: '',
          chunkIndex: 2,
          score: 0.5,
          excerpt: '',
        },
      ],
      usage: { inputTokens: 12, outputTokens: 4 },
      provider: 'openai',
      model: 'gpt-4o-mini',
    });
    const failed = message(c, { role: 'assistant', status: 'failed', error: 'The provider timed out' });
    for (const record of [message(c), streaming, finished, failed]) {
      const doc = new models.Message(messages.toDoc(record));
      expect(doc.validateSync()).toBeUndefined();
      const stored = doc.toBSON();
      const { id, ...fields } = record;
      expect(stored).toEqual({ _id: id, ...fields });
      expect(messages.fromDoc(stored)).toEqual(record);
    }
  });

  it('stores documents as given, one per source of a person', () => {
    const record: DocumentRecord = {
      id: uuidv7(),
      ownerId: uuidv7(),
      sourceType: 'note',
      sourceId: uuidv7(),
      title: '',
      chunkCount: 0,
      embeddingModel: 'aiva-lexical-v1',
      dimensions: 384,
      createdAt: new Date('2026-11-27T10:00:00.000Z'),
    };
    const doc = new models.KnowledgeDocument(documents.toDoc(record));
    expect(doc.validateSync()).toBeUndefined();
    const { id, ...fields } = record;
    expect(doc.toBSON()).toEqual({ _id: id, ...fields });
    expect(documents.fromDoc(doc.toBSON())).toEqual(record);
    expect(models.KnowledgeDocument.schema.indexes()).toContainEqual([
      { ownerId: 1, sourceType: 1, sourceId: 1 },
      expect.objectContaining({ unique: true }),
    ]);
  });

  it('keeps one usage per person, day and capability', () => {
    const doc = new models.Usage({
      ownerId: uuidv7(),
      day: '2026-11-27',
      capability: 'chat',
      requests: 0,
      inputTokens: 0,
      outputTokens: 0,
    });
    expect(doc.validateSync()).toBeUndefined();
    expect(models.Usage.schema.indexes()).toContainEqual([
      { ownerId: 1, day: 1, capability: 1 },
      expect.objectContaining({ unique: true }),
    ]);
  });

  it('declares the indexes of the SQLite store', () => {
    const names = Object.values(models).flatMap((model) =>
      model.schema.indexes().map(([, options]) => options.name),
    );
    expect(names.sort()).toEqual(
      [
        'conversations_owner',
        'documents_owner',
        'documents_owner_source_unique',
        'messages_conversation',
        'messages_owner',
        'messages_streaming',
        'usage_day',
        'usage_owner_day_capability',
      ].sort(),
    );
  });
});
