import {
  forbidden,
  idCursor,
  parseInput,
  type RequestContext,
  ROLE_ADMIN,
  requireRole,
  requireUser,
  type ViewerContext,
} from '@aiva/shared';
import { z } from 'zod';
import type { ConversationService } from './conversation.service.js';
import type { Generated, GenerationService } from './generation.service.js';
import type { KnowledgeHit, KnowledgeService } from './knowledge.service.js';
import type { AiModels } from './providers/index.js';
import type {
  Citation,
  ConversationRecord,
  DocumentRecord,
  MessageRecord,
  UsageRecord,
} from './store/ai.store.js';
import { STREAMS_PATH } from './streams/sse.js';
import { dayOf, type UsageMeter } from './usage.js';

export interface AiContext extends RequestContext, ViewerContext {}

/** Input limits of the AI subgraph, applied at the resolver edge (sizes from the configuration). */
export interface InputLimits {
  messageChars: number;
  documentChars: number;
  queryChars: number;
  imagePromptChars: number;
  speechChars: number;
}

const id = (what: string) => z.uuid(`must be a ${what} id`);
const pageSize = (max: number) =>
  z.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`);
const title = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const conversationCursor = idCursor('c:');
const messageCursor = idCursor('m:');

const upper = (value: string) => value.toUpperCase();

/** A trimmed, non-empty text of at most `max` characters. */
const text = (max: number) =>
  z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

const presentGenerated = (made: Generated) => ({
  media: { __typename: 'Media', id: made.mediaId },
  model: made.model,
});

function presentCitation(citation: Citation) {
  return {
    ...citation,
    sourceType: upper(citation.sourceType),
    media: citation.sourceType === 'media' ? { __typename: 'Media', id: citation.sourceId } : null,
  };
}

function presentMessage(message: MessageRecord) {
  return {
    id: message.id,
    role: upper(message.role),
    content: message.content,
    status: upper(message.status),
    citations: message.citations.map(presentCitation),
    usage: message.usage,
    model: message.provider && message.model ? `${message.provider}:${message.model}` : null,
    error: message.error,
    createdAt: message.createdAt.toISOString(),
  };
}

const presentConversation = (conversation: ConversationRecord) => ({
  id: conversation.id,
  title: conversation.title,
  model: conversation.model,
  createdAt: conversation.createdAt.toISOString(),
  updatedAt: conversation.updatedAt.toISOString(),
});

const presentDocument = (doc: DocumentRecord) => ({
  ...doc,
  sourceType: upper(doc.sourceType),
  createdAt: doc.createdAt.toISOString(),
});

const presentHit = (hit: KnowledgeHit) => ({
  ...hit,
  sourceType: upper(hit.sourceType),
  media: hit.sourceType === 'media' ? { __typename: 'Media', id: hit.sourceId } : null,
});

const presentUsage = (usage: Omit<UsageRecord, 'ownerId'> & { people?: number }) => ({
  day: usage.day,
  capability: usage.capability,
  requests: usage.requests,
  inputTokens: usage.inputTokens,
  outputTokens: usage.outputTokens,
  people: usage.people ?? null,
});

export interface AiResolverDeps {
  conversations: ConversationService;
  generation: GenerationService;
  knowledge: KnowledgeService;
  models: AiModels;
  meter: UsageMeter;
  limits: InputLimits;
  /** The public URL of a reply's stream. */
  streamUrl(runId: string): string;
  /** Everyone's usage on a day (admins). */
  usageTotals(day: string): Promise<Array<Omit<UsageRecord, 'ownerId'> & { people: number }>>;
  listDocuments(ownerId: string, first: number): Promise<DocumentRecord[]>;
  findDocument(ownerId: string, documentId: string): Promise<DocumentRecord | null>;
}

/** Thin: parse input → call the services → present the result. */
export function createResolvers(deps: AiResolverDeps) {
  const { conversations, knowledge, limits } = deps;
  const listArgs = (max: number) =>
    z.object({ first: pageSize(max).default(20), after: z.string().nullish() });
  return {
    User: {
      conversations: async (user: { id: string }, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        if (viewer.userId !== user.id) throw forbidden('Only the person can see their conversations');
        const { first, after } = parseInput(listArgs(100), args);
        const page = await conversations.list(user.id, {
          first,
          ...(after ? { beforeId: conversationCursor.decode(after) } : {}),
        });
        const edges = page.items.map((node) => ({
          cursor: conversationCursor.encode(node.id),
          node: presentConversation(node),
        }));
        return {
          edges,
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
        };
      },
      aiUsage: async (user: { id: string }, _: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        if (viewer.userId !== user.id && !viewer.roles.includes(ROLE_ADMIN)) {
          throw forbidden('Only the person and admins can see their usage');
        }
        return (await deps.meter.today(user.id)).map(presentUsage);
      },
    },
    Conversation: {
      __resolveReference: async (ref: { id: string }, ctx: AiContext) => {
        const found = await conversations.find(
          requireUser(ctx),
          parseInput(id('conversation'), ref.id, 'id'),
        );
        return found ? presentConversation(found) : null;
      },
      messages: async (conversation: { id: string }, args: unknown) => {
        const { first, after } = parseInput(listArgs(100), args);
        const page = await conversations.messages(conversation.id, {
          first,
          ...(after ? { afterId: messageCursor.decode(after) } : {}),
        });
        const edges = page.items.map((node) => ({
          cursor: messageCursor.encode(node.id),
          node: presentMessage(node),
        }));
        return {
          edges,
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
        };
      },
    },
    Query: {
      conversation: async (_: unknown, args: { id: unknown }, ctx: AiContext) => {
        const found = await conversations.find(
          requireUser(ctx),
          parseInput(id('conversation'), args.id, 'id'),
        );
        return found ? presentConversation(found) : null;
      },
      semanticSearch: async (_: unknown, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z.object({
            query: z
              .string()
              .trim()
              .min(1, 'must not be empty')
              .max(limits.queryChars, `must be at most ${limits.queryChars} characters`),
            first: pageSize(50).default(5),
          }),
          args,
        );
        await deps.meter.check(viewer.userId, 'embedding');
        return (await knowledge.search(viewer.userId, input.query, input.first)).map(presentHit);
      },
      knowledgeDocuments: async (_: unknown, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const { first } = parseInput(z.object({ first: pageSize(100).default(20) }), args);
        return (await deps.listDocuments(viewer.userId, first)).map(presentDocument);
      },
      aiModels: () =>
        Object.entries(deps.models.configured()).flatMap(([capability, list]) =>
          list.map((m) => ({ capability, provider: m.provider, model: m.model })),
        ),
      aiUsageTotals: async (_: unknown, args: { day?: unknown }, ctx: AiContext) => {
        requireRole(ctx, ROLE_ADMIN);
        const day = parseInput(
          z
            .string()
            .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day like 2026-11-27')
            .nullish(),
          args.day,
          'day',
        );
        return (await deps.usageTotals(day ?? dayOf(new Date()))).map(presentUsage);
      },
    },
    Mutation: {
      createConversation: async (_: unknown, args: { input?: unknown }, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z
            .object({
              title: title.nullish(),
              model: z.string().trim().min(1).max(200, 'must be at most 200 characters').nullish(),
            })
            .nullish(),
          args.input,
          'input',
        );
        return presentConversation(
          await conversations.create(viewer, { title: input?.title ?? null, model: input?.model ?? null }),
        );
      },
      sendMessage: async (_: unknown, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z.object({
            conversationId: id('conversation'),
            content: z
              .string()
              .trim()
              .min(1, 'must not be empty')
              .max(limits.messageChars, `must be at most ${limits.messageChars} characters`),
            useKnowledge: z.boolean().nullish(),
          }),
          args,
        );
        const { question, reply } = await conversations.send(
          viewer,
          input.conversationId,
          input.content,
          input.useKnowledge ?? false,
        );
        return {
          message: presentMessage(question),
          reply: presentMessage(reply),
          stream: { id: reply.id, url: deps.streamUrl(reply.id) },
        };
      },
      deleteConversation: async (_: unknown, args: { id: unknown }, ctx: AiContext) =>
        conversations.delete(requireUser(ctx), parseInput(id('conversation'), args.id, 'id')),
      indexDocument: async (_: unknown, args: { input: unknown }, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z.object({
            title,
            text: z
              .string()
              .trim()
              .min(1, 'must not be empty')
              .max(limits.documentChars, `must be at most ${limits.documentChars} characters`),
          }),
          args.input,
          'input',
        );
        await deps.meter.check(viewer.userId, 'embedding');
        return presentDocument(await knowledge.indexNote(viewer.userId, input.title, input.text));
      },
      generateImage: async (_: unknown, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z.object({
            prompt: text(limits.imagePromptChars),
            size: z
              .string()
              .regex(/^\d{2,4}x\d{2,4}$/, 'must be WIDTHxHEIGHT, e.g. 1024x1024')
              .nullish(),
          }),
          args,
        );
        const size = (input.size ?? undefined) as `${number}x${number}` | undefined;
        return presentGenerated(await deps.generation.image(viewer, input.prompt, size));
      },
      synthesizeSpeech: async (_: unknown, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z.object({
            text: text(limits.speechChars),
            voice: z
              .string()
              .trim()
              .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a voice name or id (letters, digits, - and _)')
              .nullish(),
          }),
          args,
        );
        return presentGenerated(await deps.generation.speech(viewer, input.text, input.voice ?? undefined));
      },
      transcribe: async (_: unknown, args: unknown, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(
          z.object({ mediaId: id('media'), addToKnowledge: z.boolean().nullish() }),
          args,
        );
        // The embedding quota is checked before the transcription is paid for, not after.
        if (input.addToKnowledge) await deps.meter.check(viewer.userId, 'embedding');
        const result = await deps.generation.transcribe(viewer, input.mediaId);
        const document =
          input.addToKnowledge && result.text.trim()
            ? await knowledge.index(
                viewer.userId,
                'media',
                result.mediaId,
                result.filename,
                result.text.slice(0, limits.documentChars),
              )
            : null;
        return {
          media: { __typename: 'Media', id: result.mediaId },
          text: result.text,
          durationSeconds: result.durationSeconds,
          model: result.model,
          document: document ? presentDocument(document) : null,
        };
      },
      deleteDocument: async (_: unknown, args: { id: unknown }, ctx: AiContext) => {
        const viewer = requireUser(ctx);
        const doc = await deps.findDocument(viewer.userId, parseInput(id('document'), args.id, 'id'));
        if (!doc) return false;
        return (await knowledge.remove(viewer.userId, doc.sourceType, doc.sourceId)) !== null;
      },
    },
  };
}

/** The reply stream URL under a public base. */
export const streamUrlOf = (base: string) => (runId: string) =>
  `${base.replace(/\/+$/, '')}${STREAMS_PATH}/${runId}`;
