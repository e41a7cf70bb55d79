import {
  openSqliteEventStore,
  pageLimit,
  SQLITE_OUTBOX_RELAY_MIGRATION,
  SQLITE_OUTBOX_SCHEMA,
  SQLITE_PROCESSED_EVENTS_SCHEMA,
  type SqliteRow,
  sqliteTable,
} from '@aiva/shared';
import {
  type AiStore,
  CONVERSATION_FIELDS,
  DOCUMENT_FIELDS,
  type DocumentRecord,
  MESSAGE_FIELDS,
  type MessageRecord,
  type UsageRecord,
} from './ai.store.js';

/**
 * Schema migrations, applied in order (`PRAGMA user_version` counts them). Append new steps, never edit old
 * ones. Timestamps are ISO-8601 UTC text, which compares correctly.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE conversations (
    id         TEXT PRIMARY KEY NOT NULL,
    owner_id   TEXT NOT NULL,
    title      TEXT NOT NULL,
    model      TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  ) STRICT;
  CREATE INDEX conversations_owner ON conversations (owner_id, id);
  CREATE TABLE messages (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL,
    owner_id        TEXT NOT NULL,
    role            TEXT NOT NULL,
    content         TEXT NOT NULL,
    status          TEXT NOT NULL,
    citations       TEXT NOT NULL,
    usage           TEXT NOT NULL,
    provider        TEXT NULL,
    model           TEXT NULL,
    error           TEXT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
  ) STRICT;
  CREATE INDEX messages_conversation ON messages (conversation_id, id);
  CREATE INDEX messages_owner ON messages (owner_id);
  CREATE INDEX messages_streaming ON messages (updated_at) WHERE status = 'streaming';
  CREATE TABLE documents (
    id              TEXT PRIMARY KEY NOT NULL,
    owner_id        TEXT NOT NULL,
    source_type     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    title           TEXT NOT NULL,
    chunk_count     INTEGER NOT NULL,
    embedding_model TEXT NOT NULL,
    dimensions      INTEGER NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (owner_id, source_type, source_id)
  ) STRICT;
  CREATE INDEX documents_owner ON documents (owner_id, id);
  CREATE TABLE usage (
    owner_id      TEXT NOT NULL,
    day           TEXT NOT NULL,
    capability    TEXT NOT NULL,
    requests      INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    PRIMARY KEY (owner_id, day, capability)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX usage_day ON usage (day);
  ${SQLITE_OUTBOX_SCHEMA}
  ${SQLITE_OUTBOX_RELAY_MIGRATION}
  ${SQLITE_PROCESSED_EVENTS_SCHEMA}
  `,
];

const usageOfRow = (row: SqliteRow): UsageRecord => ({
  ownerId: row.owner_id as string,
  day: row.day as string,
  capability: row.capability as UsageRecord['capability'],
  requests: row.requests as number,
  inputTokens: row.input_tokens as number,
  outputTokens: row.output_tokens as number,
});

/** Opens (creating and migrating when needed) the SQLite AI store. */
export function openSqliteAiStore(options: { file: string }): AiStore {
  const store = openSqliteEventStore({ file: options.file, migrations: MIGRATIONS, label: 'ai database' });
  const { db } = store;
  const conversations = sqliteTable(db, { table: 'conversations', fields: CONVERSATION_FIELDS });
  const messages = sqliteTable(db, { table: 'messages', fields: MESSAGE_FIELDS });
  const documents = sqliteTable(db, { table: 'documents', fields: DOCUMENT_FIELDS });
  const byOwner = conversations.pager('owner_id = @ownerId');
  const inConversation = messages.pager('conversation_id = @conversationId');
  const documentsOf = documents.pager('owner_id = @ownerId');
  const stmt = {
    touch: db.prepare<[string, string]>('UPDATE conversations SET updated_at = ? WHERE id = ?'),
    deleteMessagesOf: db.prepare<[string]>('DELETE FROM messages WHERE conversation_id = ?'),
    finish: db.prepare<[SqliteRow]>(
      `UPDATE messages SET content = @content, status = @status, citations = @citations, usage = @usage,
         provider = @provider, model = @model, error = @error, updated_at = @at
       WHERE id = @id AND status = 'streaming'`,
    ),
    stale: db.prepare<[string, number], SqliteRow>(
      `SELECT * FROM messages WHERE status = 'streaming' AND updated_at < ? ORDER BY updated_at LIMIT ?`,
    ),
    recent: db.prepare<[string, number], SqliteRow>(
      'SELECT * FROM (SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
    ),
    documentBySource: db.prepare<[string, string, string], SqliteRow>(
      'SELECT * FROM documents WHERE owner_id = ? AND source_type = ? AND source_id = ?',
    ),
    upsertDocument: db.prepare<[SqliteRow], SqliteRow>(
      `INSERT INTO documents (id, owner_id, source_type, source_id, title, chunk_count, embedding_model, dimensions,
         created_at)
       VALUES (@id, @owner_id, @source_type, @source_id, @title, @chunk_count, @embedding_model, @dimensions,
         @created_at)
       ON CONFLICT (owner_id, source_type, source_id) DO UPDATE SET title = excluded.title,
         chunk_count = excluded.chunk_count, embedding_model = excluded.embedding_model,
         dimensions = excluded.dimensions, created_at = excluded.created_at
       RETURNING *`,
    ),
    removeDocument: db.prepare<[string, string, string], SqliteRow>(
      'DELETE FROM documents WHERE owner_id = ? AND source_type = ? AND source_id = ? RETURNING *',
    ),
    addUsage: db.prepare<[SqliteRow], SqliteRow>(
      `INSERT INTO usage (owner_id, day, capability, requests, input_tokens, output_tokens)
       VALUES (@ownerId, @day, @capability, @requests, @inputTokens, @outputTokens)
       ON CONFLICT (owner_id, day, capability) DO UPDATE SET requests = requests + excluded.requests,
         input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens
       RETURNING *`,
    ),
    usageOf: db.prepare<[string, string], SqliteRow>(
      'SELECT * FROM usage WHERE owner_id = ? AND day = ? ORDER BY capability',
    ),
    usageTotals: db.prepare<[string], SqliteRow>(
      `SELECT day, capability, sum(requests) AS requests, sum(input_tokens) AS input_tokens,
         sum(output_tokens) AS output_tokens, count(*) AS people
       FROM usage WHERE day = ? GROUP BY capability ORDER BY capability`,
    ),
    removeOwner: ['conversations', 'messages', 'documents', 'usage'].map((table) =>
      db.prepare<[string]>(`DELETE FROM ${table} WHERE owner_id = ?`),
    ),
  };
  const deleteConversationTx = store.transaction((id: string) => {
    const found = conversations.findById(id);
    if (!found) return null;
    stmt.deleteMessagesOf.run(id);
    conversations.deleteById(id);
    return found;
  });
  const addExchangeTx = store.transaction((question: MessageRecord, reply: MessageRecord) => {
    messages.insert(question);
    messages.insert(reply);
    stmt.touch.run(reply.createdAt.toISOString(), reply.conversationId);
  });

  return {
    kind: 'sqlite',
    async createConversation(record) {
      conversations.insert(record);
    },
    async findConversation(id) {
      return conversations.findById(id);
    },
    async listConversations(ownerId, page) {
      return byOwner.page({ first: page.first, afterId: page.beforeId, order: 'desc' }, { ownerId });
    },
    async deleteConversation(id) {
      return deleteConversationTx(id);
    },
    async addExchange(question, reply) {
      addExchangeTx(question, reply);
    },
    async finishReply(id, outcome, at) {
      const row = {
        id,
        content: outcome.content,
        status: outcome.status,
        citations: JSON.stringify(outcome.citations),
        usage: JSON.stringify(outcome.usage),
        provider: outcome.provider,
        model: outcome.model,
        error: outcome.error,
        at: at.toISOString(),
      };
      return stmt.finish.run(row).changes > 0;
    },
    async staleReplies(before, limit) {
      return stmt.stale.all(before.toISOString(), pageLimit(limit)).map(messages.fromRow);
    },
    async findMessage(id) {
      return messages.findById(id);
    },
    async listMessages(conversationId, page) {
      return inConversation.page(
        { first: page.first, afterId: page.afterId, order: 'asc' },
        { conversationId },
      );
    },
    async recentMessages(conversationId, count) {
      return stmt.recent.all(conversationId, pageLimit(count)).map(messages.fromRow);
    },
    async saveDocument(record) {
      return documents.fromRow(stmt.upsertDocument.get(documents.toRow(record)) as SqliteRow);
    },
    async findDocument(ownerId, sourceType, sourceId) {
      const row = stmt.documentBySource.get(ownerId, sourceType, sourceId);
      return row ? documents.fromRow(row) : null;
    },
    async findDocuments(ids) {
      return documents.findByIds(ids);
    },
    async listDocuments(ownerId, page) {
      return documentsOf.page({ first: page.first, afterId: page.beforeId, order: 'desc' }, { ownerId });
    },
    async removeDocument(ownerId, sourceType, sourceId): Promise<DocumentRecord | null> {
      const row = stmt.removeDocument.get(ownerId, sourceType, sourceId);
      return row ? documents.fromRow(row) : null;
    },
    async addUsage(ownerId, day, capability, delta) {
      return usageOfRow(stmt.addUsage.get({ ownerId, day, capability, ...delta }) as SqliteRow);
    },
    async usageOf(ownerId, day) {
      return stmt.usageOf.all(ownerId, day).map(usageOfRow);
    },
    async usageTotals(day) {
      return stmt.usageTotals.all(day).map((row) => {
        const { ownerId: _ownerId, ...rest } = usageOfRow({ ...row, owner_id: '' });
        return { ...rest, people: row.people as number };
      });
    },
    async once(consumer, eventId, effect) {
      // The effect is outside this database (the vector store): it must be idempotent; the id is recorded after it.
      if (store.processed.has(consumer, eventId)) return false;
      await effect();
      return store.once(consumer, eventId, () => undefined) !== 'duplicate';
    },
    async removeOwner(consumer, eventId, ownerId) {
      const outcome = store.once(consumer, eventId, () => {
        for (const statement of stmt.removeOwner) statement.run(ownerId);
      });
      return outcome !== 'duplicate';
    },
    ...store.relay,
    ping: store.ping,
    close: store.close,
  };
}
