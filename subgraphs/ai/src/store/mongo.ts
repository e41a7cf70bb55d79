import { pageLimit } from '@aiva/shared';
import {
  connectMongoEventStore,
  type MongoConnectionOptions,
  type MongoDocOf,
  mongoCollection,
} from '@aiva/shared/mongo';
import { type Connection, type FilterQuery, Schema } from 'mongoose';
import {
  type AiStore,
  type Citation,
  CONVERSATION_FIELDS,
  type ConversationRecord,
  DOCUMENT_FIELDS,
  type DocumentRecord,
  MESSAGE_FIELDS,
  type MessageRecord,
  type TokenUsage,
  type UsageRecord,
} from './ai.store.js';

/** `url` (e.g. `mongodb://localhost:27017/?replicaSet=rs0`) and an optional `dbName` overriding the URL's. */
export type MongoAiStoreOptions = MongoConnectionOptions;

/** A conversation as stored (`_id` is its UUIDv7 id: newest first is `_id` descending). */
type ConversationDoc = MongoDocOf<ConversationRecord>;

/** A message as stored (`_id` is its UUIDv7 id: conversation order is `_id` ascending). */
type MessageDoc = MongoDocOf<MessageRecord>;

/** A document of a person's knowledge as stored; (ownerId, sourceType, sourceId) is unique. */
type KnowledgeDoc = MongoDocOf<DocumentRecord>;

/** A person's use of a capability on a day as stored: `_id` is an ObjectId; (ownerId, day, capability) is unique. */
type UsageDoc = UsageRecord;

// Free-text fields are not `required`: mongoose rejects empty strings for required String paths (a reply starts
// with empty content), and input validation is the service's job. `autoIndex` is off because indexes are
// synchronised explicitly (and awaited) at connect. `minimize: false` keeps empty values as given.
const SCHEMA_OPTIONS = { versionKey: false, id: false, autoIndex: false, minimize: false } as const;

const conversationSchema = new Schema<ConversationDoc>(
  {
    _id: { type: String, required: true },
    ownerId: { type: String, required: true },
    title: { type: String },
    model: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'conversations', ...SCHEMA_OPTIONS },
);
// The indexes of the SQLite store, one for one.
// A person's conversations newest first (and their removal).
conversationSchema.index({ ownerId: 1, _id: -1 }, { name: 'conversations_owner' });

/** One citation, stored inside its message (no `_id` of its own: the record's citations have none). */
const citationSchema = new Schema<Citation>(
  {
    index: { type: Number, required: true },
    sourceType: { type: String, required: true },
    sourceId: { type: String, required: true },
    title: { type: String },
    chunkIndex: { type: Number, required: true },
    score: { type: Number, required: true },
    excerpt: { type: String },
  },
  { _id: false, id: false, versionKey: false, minimize: false },
);

/** The token counts of a reply, stored inside its message (or null). */
const tokenUsageSchema = new Schema<TokenUsage>(
  {
    inputTokens: { type: Number, required: true },
    outputTokens: { type: Number, required: true },
  },
  { _id: false, id: false, versionKey: false, minimize: false },
);

const messageSchema = new Schema<MessageDoc>(
  {
    _id: { type: String, required: true },
    conversationId: { type: String, required: true },
    ownerId: { type: String, required: true },
    role: { type: String, required: true },
    content: { type: String },
    status: { type: String, required: true },
    citations: { type: [citationSchema], default: [] },
    usage: { type: tokenUsageSchema, default: null },
    provider: { type: String, default: null },
    model: { type: String, default: null },
    error: { type: String, default: null },
    createdAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
  },
  { collection: 'messages', ...SCHEMA_OPTIONS },
);
// A conversation's messages in order (pages, the recent context, the removal of a conversation).
messageSchema.index({ conversationId: 1, _id: 1 }, { name: 'messages_conversation' });
// The removal of a person's messages.
messageSchema.index({ ownerId: 1 }, { name: 'messages_owner' });
// Replies whose writer died: only streaming messages are in it (an equality is allowed in a partial filter).
// `_id` breaks ties of equal times, so the order is the same on every read.
messageSchema.index(
  { updatedAt: 1, _id: 1 },
  { name: 'messages_streaming', partialFilterExpression: { status: 'streaming' } },
);

const knowledgeSchema = new Schema<KnowledgeDoc>(
  {
    _id: { type: String, required: true },
    ownerId: { type: String, required: true },
    sourceType: { type: String, required: true },
    sourceId: { type: String, required: true },
    title: { type: String },
    chunkCount: { type: Number, required: true },
    embeddingModel: { type: String, required: true },
    dimensions: { type: Number, required: true },
    createdAt: { type: Date, required: true },
  },
  { collection: 'documents', ...SCHEMA_OPTIONS },
);
// One document per source of a person: what `saveDocument` upserts on.
knowledgeSchema.index(
  { ownerId: 1, sourceType: 1, sourceId: 1 },
  { unique: true, name: 'documents_owner_source_unique' },
);
// A person's documents newest first (and their removal).
knowledgeSchema.index({ ownerId: 1, _id: -1 }, { name: 'documents_owner' });

const usageSchema = new Schema<UsageDoc>(
  {
    ownerId: { type: String, required: true },
    day: { type: String, required: true },
    capability: { type: String, required: true },
    requests: { type: Number, required: true },
    inputTokens: { type: Number, required: true },
    outputTokens: { type: Number, required: true },
  },
  { collection: 'usage', ...SCHEMA_OPTIONS },
);
// What `addUsage` upserts on; also serves a person's usage of a day and their removal (prefix `ownerId`).
usageSchema.index(
  { ownerId: 1, day: 1, capability: 1 },
  { unique: true, name: 'usage_owner_day_capability' },
);
// Everyone's usage of a day (admins' totals).
usageSchema.index({ day: 1 }, { name: 'usage_day' });

/**
 * Registers the store's models on `connection` (names unique per connection). Exported for the server-free tests
 * of the documents the store writes.
 */
export function registerAiModels(connection: Connection) {
  return {
    Conversation: connection.model<ConversationDoc>('Conversation', conversationSchema),
    Message: connection.model<MessageDoc>('Message', messageSchema),
    KnowledgeDocument: connection.model<KnowledgeDoc>('KnowledgeDocument', knowledgeSchema),
    Usage: connection.model<UsageDoc>('Usage', usageSchema),
  };
}

type AiModels = ReturnType<typeof registerAiModels>;

/** The record ↔ document mapping and common operations of the collections holding whole records. */
export function aiCollections(models: AiModels) {
  return {
    conversations: mongoCollection(models.Conversation, { fields: CONVERSATION_FIELDS }),
    messages: mongoCollection(models.Message, { fields: MESSAGE_FIELDS }),
    documents: mongoCollection(models.KnowledgeDocument, { fields: DOCUMENT_FIELDS }),
  };
}

/** A usage document as a record (without the ObjectId). */
const usageOfDoc = (doc: UsageDoc): UsageRecord => ({
  ownerId: doc.ownerId,
  day: doc.day,
  capability: doc.capability,
  requests: doc.requests,
  inputTokens: doc.inputTokens,
  outputTokens: doc.outputTokens,
});

/** The key of a document of a person's knowledge: the source it was made from. */
const bySource = (
  ownerId: string,
  sourceType: DocumentRecord['sourceType'],
  sourceId: string,
): FilterQuery<KnowledgeDoc> => ({ ownerId, sourceType, sourceId });

/** One capability's totals of a day, as the aggregation groups them (`_id` is the capability). */
interface UsageTotalDoc {
  _id: UsageRecord['capability'];
  requests: number;
  inputTokens: number;
  outputTokens: number;
  people: number;
}

/**
 * Connects the MongoDB AI store on its own connection (not mongoose's global default connection), creates the
 * collections and synchronises their indexes. Same behaviour as the SQLite store: an exchange and the touch of its
 * conversation in one transaction (replica set; see `MongoStoreKit.write` for a standalone server), a reply
 * finished once (conditional update), one document per source (upsert on the unique index), usage added with
 * `$inc` (upsert: created at zero), consumed events applied once per (consumer, event id).
 */
export async function connectMongoAiStore(options: MongoAiStoreOptions): Promise<AiStore> {
  const store = await connectMongoEventStore({
    ...options,
    models: registerAiModels,
    // No write of this store is a user's conflict: a duplicate id is a bug and stays the driver's error.
    mapError: (error) => error,
  });
  const { Conversation, Message, KnowledgeDocument, Usage } = store.models;
  const { write } = store;
  const { conversations, messages, documents } = aiCollections(store.models);

  return {
    kind: 'mongo',

    async createConversation(record) {
      await conversations.insert(record);
    },

    async findConversation(id) {
      return conversations.findById(id);
    },

    async listConversations(ownerId, page) {
      return conversations.page({
        first: page.first,
        afterId: page.beforeId,
        order: 'desc',
        filter: { ownerId },
      });
    },

    async deleteConversation(id) {
      return write(async (session) => {
        const found = await conversations.findById(id, session);
        if (!found) return null;
        await Message.deleteMany({ conversationId: id }).session(session).exec();
        // The one that removes it returns it: of two deletes at once without a transaction, the other gets null.
        return conversations.removeById(id, session);
      });
    },

    async addExchange(question, reply) {
      await write(async (session) => {
        await messages.insert([question, reply], session);
        await Conversation.updateOne({ _id: reply.conversationId }, { $set: { updatedAt: reply.createdAt } })
          .session(session)
          .exec();
      });
    },

    async finishReply(id, outcome, at) {
      // Conditioned on the reply still streaming: of two writers (or a writer and the stale sweep), one wins.
      const result = await Message.updateOne(
        { _id: id, status: 'streaming' },
        {
          $set: {
            content: outcome.content,
            status: outcome.status,
            citations: outcome.citations.map((citation) => ({ ...citation })),
            usage: outcome.usage === null ? null : { ...outcome.usage },
            provider: outcome.provider,
            model: outcome.model,
            error: outcome.error,
            updatedAt: at,
          },
        },
      ).exec();
      return result.matchedCount > 0;
    },

    async staleReplies(before, limit) {
      const docs = await Message.find({ status: 'streaming', updatedAt: { $lt: before } })
        .sort({ updatedAt: 1, _id: 1 })
        .limit(pageLimit(limit))
        .lean<MessageDoc[]>()
        .exec();
      return docs.map(messages.fromDoc);
    },

    async findMessage(id) {
      return messages.findById(id);
    },

    async listMessages(conversationId, page) {
      return messages.page({
        first: page.first,
        afterId: page.afterId,
        order: 'asc',
        filter: { conversationId },
      });
    },

    async recentMessages(conversationId, count) {
      // The newest `count`, read newest first, then put oldest first.
      const docs = await Message.find({ conversationId })
        .sort({ _id: -1 })
        .limit(pageLimit(count))
        .lean<MessageDoc[]>()
        .exec();
      return docs.reverse().map(messages.fromDoc);
    },

    async saveDocument(record) {
      // One atomic upsert on the unique index: the first save of a source keeps its id, later ones replace the
      // rest (SQLite's `ON CONFLICT DO UPDATE`). Two first saves at once: the server retries the loser's insert as
      // an update (an upsert whose filter is the unique index's equality).
      const { _id, ownerId, sourceType, sourceId, ...fields } = documents.toDoc(record);
      const doc = await KnowledgeDocument.findOneAndUpdate(
        bySource(ownerId, sourceType, sourceId),
        { $set: fields, $setOnInsert: { _id } },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<KnowledgeDoc>()
        .exec();
      if (!doc) throw new Error(`Saving the document of ${sourceType} ${sourceId} returned nothing`);
      return documents.fromDoc(doc);
    },

    async findDocument(ownerId, sourceType, sourceId) {
      const doc = await KnowledgeDocument.findOne(bySource(ownerId, sourceType, sourceId))
        .lean<KnowledgeDoc>()
        .exec();
      return doc ? documents.fromDoc(doc) : null;
    },

    async findDocuments(ids) {
      return documents.findByIds(ids);
    },

    async listDocuments(ownerId, page) {
      return documents.page({
        first: page.first,
        afterId: page.beforeId,
        order: 'desc',
        filter: { ownerId },
      });
    },

    async removeDocument(ownerId, sourceType, sourceId) {
      const doc = await KnowledgeDocument.findOneAndDelete(bySource(ownerId, sourceType, sourceId))
        .lean<KnowledgeDoc>()
        .exec();
      return doc ? documents.fromDoc(doc) : null;
    },

    async addUsage(ownerId, day, capability, delta) {
      // One atomic upsert: a missing row is created at zero and incremented (SQLite's `ON CONFLICT DO UPDATE`).
      const doc = await Usage.findOneAndUpdate(
        { ownerId, day, capability },
        {
          $inc: {
            requests: delta.requests,
            inputTokens: delta.inputTokens,
            outputTokens: delta.outputTokens,
          },
        },
        { upsert: true, returnDocument: 'after' },
      )
        .lean<UsageDoc>()
        .exec();
      if (!doc) throw new Error(`Adding ${capability} usage of ${day} returned nothing`);
      return usageOfDoc(doc);
    },

    async usageOf(ownerId, day) {
      const docs = await Usage.find({ ownerId, day }).sort({ capability: 1 }).lean<UsageDoc[]>().exec();
      return docs.map(usageOfDoc);
    },

    async usageTotals(day) {
      const totals = await Usage.aggregate<UsageTotalDoc>([
        { $match: { day } },
        {
          $group: {
            _id: '$capability',
            requests: { $sum: '$requests' },
            inputTokens: { $sum: '$inputTokens' },
            outputTokens: { $sum: '$outputTokens' },
            people: { $sum: 1 },
          },
        },
        { $sort: { _id: 1 } },
      ]).exec();
      return totals.map((total) => ({
        day,
        capability: total._id,
        requests: total.requests,
        inputTokens: total.inputTokens,
        outputTokens: total.outputTokens,
        people: total.people,
      }));
    },

    async once(consumer, eventId, effect) {
      // The effect is outside this database (the vector store): it must be idempotent; the id is recorded after it.
      if (await store.processed.has(consumer, eventId)) return false;
      await effect();
      return (await store.once(consumer, eventId, async () => undefined)) !== 'duplicate';
    },

    async removeOwner(consumer, eventId, ownerId) {
      const outcome = await store.once(consumer, eventId, async (session) => {
        await Conversation.deleteMany({ ownerId }).session(session).exec();
        await Message.deleteMany({ ownerId }).session(session).exec();
        await KnowledgeDocument.deleteMany({ ownerId }).session(session).exec();
        await Usage.deleteMany({ ownerId }).session(session).exec();
      });
      return outcome !== 'duplicate';
    },

    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
