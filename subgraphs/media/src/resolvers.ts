import { idCursor, parseInput, type RequestContext, requireUser, type ViewerContext } from '@aiva/shared';
import { z } from 'zod';
import { fileOf, SOURCE, TEXT } from './http/files.js';
import type { MediaService } from './media.service.js';
import type { UrlSigner } from './signed-urls.js';
import { MEDIA_KINDS, type MediaRecord } from './store/media.store.js';

export interface MediaContext extends RequestContext, ViewerContext {}

/** Input rules of the media subgraph, applied at the resolver edge. */
const mediaId = z.uuid('must be a media id');
const visibility = z.enum(['PRIVATE', 'PUBLIC']);
const listArgs = z.object({
  first: z.number().int().min(1, 'must be at least 1').max(100, 'must be at most 100').default(20),
  after: z.string().nullish(),
  kind: z.enum(MEDIA_KINDS).nullish(),
});
const createUploadInput = z.object({
  filename: z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters'),
  mimeType: z
    .string()
    .trim()
    .toLowerCase()
    .regex(/^[a-z0-9.+-]+\/[a-z0-9.+-]+$/, 'must be a MIME type such as image/jpeg'),
  size: z.number().int('must be a whole number of bytes').min(1, 'must be at least 1 byte'),
  visibility: visibility.default('PRIVATE'),
  ownerId: z
    .string()
    .trim()
    .min(1)
    .max(128)
    .nullish()
    .transform((id) => id ?? undefined),
});

const cursor = idCursor('m:');

/** The Media object of a record: its signed URLs are made for this answer (valid for the download TTL). */
export function presentMedia(record: MediaRecord, signer: UrlSigner, ttlSeconds: number) {
  const url = (name: string) => signer.downloadUrl(record.id, name, ttlSeconds);
  const main =
    record.kind === 'IMAGE' ? record.variants.find((v) => v.name.startsWith('original.'))?.name : SOURCE;
  return {
    id: record.id,
    owner: { __typename: 'User', id: record.ownerId },
    kind: record.kind,
    filename: record.filename,
    mimeType: record.mimeType,
    size: record.size,
    sha256: record.sha256,
    status: record.status,
    progress: record.status === 'PROCESSING' ? record.progress : null,
    failureReason: record.failureReason,
    visibility: record.visibility,
    width: record.width,
    height: record.height,
    durationSeconds: record.durationSeconds,
    pageCount: record.pageCount,
    variants: record.variants.map((v) => ({
      name: v.name,
      url: url(v.name),
      width: v.width,
      height: v.height,
      mimeType: v.mimeType,
      size: v.size,
    })),
    url: main && fileOf(record, main) ? url(main) : null,
    textUrl: fileOf(record, TEXT) ? url(TEXT) : null,
    createdAt: record.createdAt.toISOString(),
  };
}

/** Thin: parse input → call the service → present the result. */
export function createResolvers(media: MediaService, signer: UrlSigner, downloadTtlSeconds: number) {
  const present = (record: MediaRecord) => presentMedia(record, signer, downloadTtlSeconds);
  return {
    User: {
      media: async (user: { id: string }, args: unknown, ctx: MediaContext) => {
        const { first, after, kind } = parseInput(listArgs, args);
        const page = await media.list(ctx.viewer, user.id, {
          first,
          ...(after ? { beforeId: cursor.decode(after) } : {}),
          ...(kind ? { kind } : {}),
        });
        const edges = page.media.map((node) => ({ cursor: cursor.encode(node.id), node: present(node) }));
        return {
          edges,
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
        };
      },
    },
    Media: {
      // Another subgraph referencing a media item gets it with the same access rules as `media(id)`.
      __resolveReference: async (ref: { id: string }, ctx: MediaContext) => {
        const record = await media.find(ctx.viewer, parseInput(mediaId, ref.id, 'id'));
        return record ? present(record) : null;
      },
    },
    Query: {
      media: async (_: unknown, args: { id: unknown }, ctx: MediaContext) => {
        const record = await media.find(ctx.viewer, parseInput(mediaId, args.id, 'id'));
        return record ? present(record) : null;
      },
    },
    Mutation: {
      createUpload: async (_: unknown, args: { input: unknown }, ctx: MediaContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(createUploadInput, args.input, 'input');
        const { record, expiresAt } = await media.createUpload(viewer, input);
        return {
          media: present(record),
          uploadUrl: signer.uploadUrl(record.id, expiresAt),
          expiresAt: expiresAt.toISOString(),
        };
      },
      setMediaVisibility: async (
        _: unknown,
        args: { id: unknown; visibility: unknown },
        ctx: MediaContext,
      ) => {
        const viewer = requireUser(ctx);
        const id = parseInput(mediaId, args.id, 'id');
        return present(
          await media.setVisibility(viewer, id, parseInput(visibility, args.visibility, 'visibility')),
        );
      },
      deleteMedia: async (_: unknown, args: { id: unknown }, ctx: MediaContext) =>
        media.delete(requireUser(ctx), parseInput(mediaId, args.id, 'id')),
    },
  };
}
