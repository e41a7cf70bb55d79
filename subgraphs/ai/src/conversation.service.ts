import {
  badUserInput,
  errorMessage,
  forbidden,
  type Logger,
  notFound,
  uuidv7,
  type Viewer,
} from '@aiva/shared';
import type { ModelMessage } from 'ai';
import type { KnowledgeHit, KnowledgeService } from './knowledge.service.js';
import { type AiModels, NotConfiguredError, ProviderError } from './providers/index.js';
import type {
  AiStore,
  Citation,
  ConversationRecord,
  MessageRecord,
  Page,
  ReplyOutcome,
} from './store/ai.store.js';
import type { RunLog } from './streams/run-log.js';
import { RunWriter } from './streams/run-log.js';
import type { UsageMeter } from './usage.js';

export interface ConversationServiceOptions {
  store: AiStore;
  models: AiModels;
  knowledge: KnowledgeService;
  meter: UsageMeter;
  runs: RunLog;
  /** How long a reply's stream can be read (and resumed), in ms. */
  streamTtlMs: number;
  /** Earlier messages sent with each question (the conversation's context). */
  contextMessages: number;
  /** Knowledge chunks a question with `useKnowledge` draws on. */
  knowledgeTopK: number;
  logger?: Logger;
}

/** What the assistant is told, before the conversation. */
const SYSTEM_PROMPT = 'You are a helpful assistant. Answer clearly and briefly.';

/** The numbered sources of a grounded question. */
function groundedPrompt(hits: KnowledgeHit[]): string {
  const sources = hits
    .map((hit, i) => `[${i + 1}] ${hit.title} (part ${hit.chunkIndex + 1}):\n${hit.text}`)
    .join('\n\n');
  return `${SYSTEM_PROMPT}\nAnswer from the numbered sources below when they help, and cite each one you use as [n]. If they do not hold the answer, say so.\n\nSources:\n${sources}`;
}

/** The citations of a reply: the sources it cites as `[n]`, or all it was given when it cites none. */
export function citationsOf(text: string, hits: KnowledgeHit[]): Citation[] {
  const all = hits.map(
    (hit, i): Citation => ({
      index: i + 1,
      sourceType: hit.sourceType,
      sourceId: hit.sourceId,
      title: hit.title,
      chunkIndex: hit.chunkIndex,
      score: hit.score,
      excerpt: hit.text.slice(0, 300),
    }),
  );
  const cited = new Set([...text.matchAll(/\[(\d{1,3})\]/g)].map((m) => Number(m[1])));
  const used = all.filter((c) => cited.has(c.index));
  return used.length > 0 ? used : all;
}

/** The error a person sees when a reply fails, and its code (never a provider's raw message or a key). */
function failureOf(error: unknown): { message: string; code: string } {
  if (error instanceof NotConfiguredError) return { message: error.message, code: 'INTERNAL_SERVER_ERROR' };
  if (error instanceof ProviderError) {
    return { message: 'The AI provider could not answer; try again later', code: 'INTERNAL_SERVER_ERROR' };
  }
  return { message: 'The reply could not be written', code: 'INTERNAL_SERVER_ERROR' };
}

/**
 * Conversations: a person's own only. `send` stores the question and a STREAMING reply, opens the reply's run
 * in the run log and returns at once; the reply is written in the background, each piece appended to the run
 * (read over SSE on any instance), and stored whole at the end with its usage and citations.
 */
export class ConversationService {
  private readonly writing = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: ConversationServiceOptions) {}

  /**
   * A new conversation. Its replies come from `model` (`provider:model`, one of the configured chat models) with
   * the others as fallbacks, or from the configured chat models in their order.
   */
  async create(
    viewer: Viewer,
    input: { title?: string | null; model?: string | null },
  ): Promise<ConversationRecord> {
    if (input.model) {
      const chat = this.options.models.configured().chat.map((m) => `${m.provider}:${m.model}`);
      if (!chat.includes(input.model)) {
        throw badUserInput(
          chat.length > 0
            ? `${input.model} is not a configured chat model (configured: ${chat.join(', ')})`
            : new NotConfiguredError('chat').message,
          { field: 'model' },
        );
      }
    }
    const now = new Date();
    const record: ConversationRecord = {
      id: uuidv7(),
      ownerId: viewer.userId,
      title: input.title ?? 'New conversation',
      model: input.model ?? null,
      createdAt: now,
      updatedAt: now,
    };
    await this.options.store.createConversation(record);
    return record;
  }

  /** The viewer's conversation; null when absent, FORBIDDEN when it is someone else's. */
  async find(viewer: Viewer, id: string): Promise<ConversationRecord | null> {
    const found = await this.options.store.findConversation(id);
    if (found && found.ownerId !== viewer.userId)
      throw forbidden('This conversation belongs to someone else');
    return found;
  }

  list(ownerId: string, page: { first: number; beforeId?: string }): Promise<Page<ConversationRecord>> {
    return this.options.store.listConversations(ownerId, page);
  }

  messages(conversationId: string, page: { first: number; afterId?: string }): Promise<Page<MessageRecord>> {
    return this.options.store.listMessages(conversationId, page);
  }

  async delete(viewer: Viewer, id: string): Promise<boolean> {
    if (!(await this.find(viewer, id))) return false;
    return (await this.options.store.deleteConversation(id)) !== null;
  }

  /** Stores the question and the reply to come; the reply is written in the background. */
  async send(
    viewer: Viewer,
    conversationId: string,
    content: string,
    useKnowledge: boolean,
  ): Promise<{ question: MessageRecord; reply: MessageRecord }> {
    const conversation = await this.find(viewer, conversationId);
    if (!conversation) throw notFound('No such conversation');
    if (this.options.models.configured().chat.length === 0) {
      throw badUserInput(new NotConfiguredError('chat').message, { reason: 'NOT_CONFIGURED' });
    }
    await this.options.meter.check(viewer.userId, 'chat');
    const now = new Date();
    const base = {
      conversationId,
      ownerId: viewer.userId,
      citations: [],
      usage: null,
      provider: null,
      model: null,
    };
    const question: MessageRecord = {
      ...base,
      id: uuidv7(),
      role: 'user',
      content,
      status: 'complete',
      error: null,
      createdAt: now,
      updatedAt: now,
    };
    const reply: MessageRecord = {
      ...base,
      id: uuidv7(),
      role: 'assistant',
      content: '',
      status: 'streaming',
      error: null,
      createdAt: now,
      updatedAt: now,
    };
    const history = await this.options.store.recentMessages(conversationId, this.options.contextMessages);
    await this.options.store.addExchange(question, reply);
    await this.options.runs.create(reply.id, viewer.userId, this.options.streamTtlMs);
    const writing = this.write(reply, [...history, question], useKnowledge, conversation.model).finally(() =>
      this.writing.delete(writing),
    );
    this.writing.add(writing);
    return { question, reply };
  }

  /** Writes one reply: grounding, the streamed text, the stored outcome, the usage; its stream ends either way. */
  private async write(
    reply: MessageRecord,
    history: MessageRecord[],
    useKnowledge: boolean,
    model: string | null,
  ): Promise<void> {
    const { store, models, meter, logger } = this.options;
    const writer = new RunWriter(this.options.runs, reply.id);
    const signal = this.stopping.signal;
    let text = '';
    let hits: KnowledgeHit[] = [];
    try {
      const question = history.at(-1)?.content ?? '';
      if (useKnowledge) {
        hits = await this.options.knowledge.search(
          reply.ownerId,
          question,
          this.options.knowledgeTopK,
          signal,
        );
      }
      const messages: ModelMessage[] = history
        .filter((m) => m.status === 'complete' && m.content.length > 0)
        .map((m) => ({ role: m.role, content: m.content }));
      const stream = models.streamChat({
        messages,
        model,
        system: hits.length > 0 ? groundedPrompt(hits) : SYSTEM_PROMPT,
        signal,
      });
      for await (const delta of stream) {
        text += delta;
        await writer.delta(delta);
      }
      const result = await stream.result;
      const usage = {
        inputTokens: result.usage.inputTokens ?? 0,
        outputTokens: result.usage.outputTokens ?? 0,
      };
      const outcome: ReplyOutcome = {
        content: result.text,
        status: 'complete',
        citations: citationsOf(result.text, hits),
        usage,
        provider: result.provider,
        model: result.model,
        error: null,
      };
      await store.finishReply(reply.id, outcome, new Date());
      await meter.record(reply.ownerId, 'chat', usage.inputTokens, usage.outputTokens);
      await writer.done({
        messageId: reply.id,
        usage,
        citations: outcome.citations,
        model: `${result.provider}:${result.model}`,
      });
      // Lengths only: prompts and replies are the person's, never logged.
      logger?.info(
        {
          messageId: reply.id,
          provider: result.provider,
          model: result.model,
          chars: result.text.length,
          ...usage,
        },
        'reply written',
      );
    } catch (error) {
      const failure = failureOf(error);
      logger?.warn({ messageId: reply.id, err: errorMessage(error) }, 'reply failed');
      const outcome: ReplyOutcome = {
        content: text,
        status: 'failed',
        citations: [],
        usage: null,
        provider: null,
        model: null,
        error: failure.message,
      };
      await store.finishReply(reply.id, outcome, new Date()).catch(() => false);
      await writer.fail(failure.message, failure.code).catch(() => {});
    }
  }

  /** Marks replies whose writer died (a crashed instance) as failed. Returns how many. */
  async failStale(olderThanMs: number): Promise<number> {
    const stale = await this.options.store.staleReplies(new Date(Date.now() - olderThanMs), 100);
    let failed = 0;
    for (const reply of stale) {
      const outcome: ReplyOutcome = {
        content: reply.content,
        status: 'failed',
        citations: [],
        usage: null,
        provider: null,
        model: null,
        error: 'The reply was interrupted; ask again',
      };
      if (await this.options.store.finishReply(reply.id, outcome, new Date())) failed += 1;
    }
    return failed;
  }

  /** Stops the replies being written (they end as failed) and waits for them. */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.writing]);
  }
}
