import type { OutboxStore, RecordFields } from '@aiva/shared';

/** One conversation of one person. */
export interface ConversationRecord {
  id: string; // UUIDv7: newest first is id descending
  ownerId: string;
  title: string;
  /** The chat model asked for (`provider:model`), or null for the configured default. */
  model: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type MessageRole = 'user' | 'assistant';
/** A reply is `streaming` while it is generated, then `complete`, or `failed` with `error`. */
export type MessageStatus = 'streaming' | 'complete' | 'failed';

/** A knowledge chunk a reply drew on, numbered as the reply cites it (`[1]`). */
export interface Citation {
  index: number;
  sourceType: 'note' | 'media';
  sourceId: string;
  title: string;
  chunkIndex: number;
  score: number;
  /** The start of the chunk, for showing (at most a few hundred characters). */
  excerpt: string;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

/** One message of a conversation: the person's, or the assistant's reply. */
export interface MessageRecord {
  id: string; // UUIDv7: conversation order is id ascending
  conversationId: string;
  ownerId: string;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  citations: Citation[];
  usage: TokenUsage | null;
  /** The provider and model that wrote a reply. */
  provider: string | null;
  model: string | null;
  /** Why a reply failed, for people. */
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A document of a person's knowledge: a note indexed by `indexDocument`, or a media item's extracted text. */
export interface DocumentRecord {
  id: string;
  ownerId: string;
  sourceType: 'note' | 'media';
  /** The note's own id, or the media item's id. */
  sourceId: string;
  title: string;
  chunkCount: number;
  /** The embedding model its vectors were made with (`provider:model` or `aiva-lexical-v1`), and their size. */
  embeddingModel: string;
  dimensions: number;
  createdAt: Date;
}

/** A capability whose use is counted and limited per person and day. */
export type Capability = 'chat' | 'embedding' | 'image' | 'transcription' | 'speech';

/** What one person used of one capability on one day (UTC). */
export interface UsageRecord {
  ownerId: string;
  /** `YYYY-MM-DD`, UTC. */
  day: string;
  capability: Capability;
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

export const CONVERSATION_FIELDS: RecordFields<ConversationRecord> = {
  id: 'string',
  ownerId: 'string',
  title: 'string',
  model: 'value',
  createdAt: 'date',
  updatedAt: 'date',
};

export const MESSAGE_FIELDS: RecordFields<MessageRecord> = {
  id: 'string',
  conversationId: 'string',
  ownerId: 'string',
  role: 'string',
  content: 'string',
  status: 'string',
  citations: 'list',
  usage: 'json',
  provider: 'value',
  model: 'value',
  error: 'value',
  createdAt: 'date',
  updatedAt: 'date',
};

export const DOCUMENT_FIELDS: RecordFields<DocumentRecord> = {
  id: 'string',
  ownerId: 'string',
  sourceType: 'string',
  sourceId: 'string',
  title: 'string',
  chunkCount: 'number',
  embeddingModel: 'string',
  dimensions: 'number',
  createdAt: 'date',
};

/** How a reply ended. */
export interface ReplyOutcome {
  content: string;
  status: Exclude<MessageStatus, 'streaming'>;
  citations: Citation[];
  usage: TokenUsage | null;
  provider: string | null;
  model: string | null;
  error: string | null;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
}

/**
 * The AI subgraph's store port (SQLite by default, MongoDB with MONGODB_URL): conversations and their messages,
 * the documents of each person's knowledge (their vectors live in the vector store), and usage per person,
 * capability and day. Consumed events apply once by id.
 */
export interface AiStore extends OutboxStore {
  readonly kind: 'sqlite' | 'mongo';
  createConversation(record: ConversationRecord): Promise<void>;
  findConversation(id: string): Promise<ConversationRecord | null>;
  /** A person's conversations, most recently created first. */
  listConversations(
    ownerId: string,
    page: { first: number; beforeId?: string | undefined },
  ): Promise<Page<ConversationRecord>>;
  /** Removes the conversation and its messages; the removed conversation, or null. */
  deleteConversation(id: string): Promise<ConversationRecord | null>;
  /** Adds the person's message and the reply being written, and touches the conversation, in one transaction. */
  addExchange(question: MessageRecord, reply: MessageRecord): Promise<void>;
  /** Records how a streaming reply ended; false when it is not streaming (ended already, or gone). */
  finishReply(id: string, outcome: ReplyOutcome, at: Date): Promise<boolean>;
  /** Replies still `streaming` since before `before` (their writer died): to be marked failed. */
  staleReplies(before: Date, limit: number): Promise<MessageRecord[]>;
  findMessage(id: string): Promise<MessageRecord | null>;
  /** A conversation's messages, oldest first, after `afterId`. */
  listMessages(
    conversationId: string,
    page: { first: number; afterId?: string | undefined },
  ): Promise<Page<MessageRecord>>;
  /** The last `count` messages of a conversation, oldest first (the context of the next reply). */
  recentMessages(conversationId: string, count: number): Promise<MessageRecord[]>;
  /** Adds or replaces the document of (ownerId, sourceType, sourceId); the record stored. */
  saveDocument(record: DocumentRecord): Promise<DocumentRecord>;
  findDocument(
    ownerId: string,
    sourceType: DocumentRecord['sourceType'],
    sourceId: string,
  ): Promise<DocumentRecord | null>;
  findDocuments(ids: readonly string[]): Promise<DocumentRecord[]>;
  /** A person's documents, newest first. */
  listDocuments(
    ownerId: string,
    page: { first: number; beforeId?: string | undefined },
  ): Promise<Page<DocumentRecord>>;
  /** Removes a document; the removed record, or null. */
  removeDocument(
    ownerId: string,
    sourceType: DocumentRecord['sourceType'],
    sourceId: string,
  ): Promise<DocumentRecord | null>;
  /** Adds to a person's usage of a capability on a day (created at zero). Returns the new totals. */
  addUsage(
    ownerId: string,
    day: string,
    capability: Capability,
    delta: Omit<UsageRecord, 'ownerId' | 'day' | 'capability'>,
  ): Promise<UsageRecord>;
  /** A person's usage on a day, per capability used. */
  usageOf(ownerId: string, day: string): Promise<UsageRecord[]>;
  /** Everyone's usage on a day, per capability (admins). */
  usageTotals(day: string): Promise<Array<Omit<UsageRecord, 'ownerId'> & { people: number }>>;
  /** Runs `effect` once per (consumer, eventId); false for a duplicate (nothing ran). */
  once(consumer: string, eventId: string, effect: () => Promise<void> | void): Promise<boolean>;
  /** Removes everything of a person (conversations, messages, documents, usage); once per (consumer, eventId). */
  removeOwner(consumer: string, eventId: string, ownerId: string): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
