import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errorMessage, type Logger, sendHttpError } from '@aiva/shared';
import { Server as TusServer } from '@tus/server';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { contentFolder, type MediaService } from '../media.service.js';
import { MediaRejectedError, sniffFile } from '../processing/index.js';
import type { UrlSigner } from '../signed-urls.js';
import { type FileStorage, openStagedUpload, type TusDatastore } from '../storage/index.js';
import type { MediaKind, MediaStore, UploadedFacts } from '../store/media.store.js';

/** Where clients send bytes: `<MEDIA_PUBLIC_URL>/media/uploads/<media id>?t=<signature>` (tus 1.0). */
export const UPLOADS_PATH = '/media/uploads';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A tus error answer: the status and a one-line body for people. */
const tusError = (status_code: number, message: string) => ({ status_code, body: `${message}\n` });

export interface UploadsOptions {
  store: MediaStore;
  storage: FileStorage;
  datastore: TusDatastore;
  signer: UrlSigner;
  service: MediaService;
  maxBytes: Record<MediaKind, number>;
  /** Where a remotely staged upload is copied to be read (default the OS temp dir). */
  workRoot: string;
  /** An event was written to the outbox. */
  onEvent?(): void;
  logger?: Logger;
}

/** The SHA-256 of a file, read once. */
async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Completes an upload whose last byte arrived: types it from its bytes (refusing what is not allowed), hashes it,
 * stores it under the person's content folder unless an identical file of theirs is there already, and records
 * UPLOADED with the uploaded event (which queues processing). The staged bytes are removed once the file is
 * stored or refused; when something else fails (the storage is down), they stay, and the next HEAD on the upload
 * URL (a client checking its offset) tries again, so a complete upload is never lost.
 */
export async function finishUpload(options: UploadsOptions, id: string): Promise<void> {
  const { store, storage, logger } = options;
  const record = await store.find(id);
  if (record?.status !== 'AWAITING_UPLOAD') return;
  const staged = await openStagedUpload(options.datastore, id);
  let copy: string | undefined;
  let settled = false;
  try {
    let path = staged.path;
    if (!path) {
      copy = join(options.workRoot, `upload-${id}`);
      await pipeline(await staged.stream(), createWriteStream(copy, { mode: 0o600 }));
      path = copy;
    }
    const size = (await stat(path)).size;
    const sha256 = await sha256Of(path);
    const now = new Date();
    let sniffed: Awaited<ReturnType<typeof sniffFile>>;
    try {
      sniffed = await sniffFile(path);
    } catch (error) {
      if (!(error instanceof MediaRejectedError)) throw error;
      await store.markRejected(id, error.message, { size, sha256 }, now);
      logger?.info({ mediaId: id, reason: error.reason }, 'upload refused');
      settled = true;
      throw tusError(415, error.message);
    }
    const max = options.maxBytes[sniffed.kind];
    if (size > max) {
      const reason = `A ${sniffed.kind.toLowerCase()} may have at most ${max} bytes`;
      await store.markRejected(
        id,
        reason,
        { size, sha256, kind: sniffed.kind, mimeType: sniffed.mimeType },
        now,
      );
      settled = true;
      throw tusError(413, reason);
    }
    const sourceKey = `${contentFolder(record.ownerId, sha256)}/source`;
    // An identical file of the same person is stored once.
    if (!(await storage.stat(sourceKey))) {
      await storage.putFile(sourceKey, path, { contentType: sniffed.mimeType });
    }
    const facts: UploadedFacts = { kind: sniffed.kind, mimeType: sniffed.mimeType, size, sha256, sourceKey };
    settled = true;
    if (await store.markUploaded(id, facts, options.service.uploadedEvent(record, facts, now), now)) {
      options.onEvent?.();
      logger?.info({ mediaId: id, kind: sniffed.kind, size }, 'upload finished');
    }
  } finally {
    if (settled) {
      await staged
        .remove()
        .catch((error) => logger?.warn({ mediaId: id, err: errorMessage(error) }, 'staging removal failed'));
    }
    if (copy) await rm(copy, { force: true });
  }
}

/**
 * A HEAD on an upload tus no longer holds (or holds complete): a client that lost the answer to its last PATCH
 * asks where it stands. A complete upload whose completion failed (the storage was down) is completed now; a
 * stored one answers that every byte arrived; a refused one answers 410 with the reason. Undefined: tus answers.
 */
async function headOfSettled(
  options: UploadsOptions,
  id: string,
  token: string | undefined,
  reply: FastifyReply,
): Promise<FastifyReply | undefined> {
  if (options.signer.checkUpload(id, token) !== 'valid') return undefined;
  let record = await options.store.find(id);
  if (record?.status === 'AWAITING_UPLOAD') {
    const staged = await openStagedUpload(options.datastore, id).catch(() => undefined);
    if (!staged?.complete) return undefined;
    try {
      await finishUpload(options, id);
    } catch (error) {
      const status = (error as { status_code?: number }).status_code;
      if (status === undefined) throw error;
    }
    record = await options.store.find(id);
  }
  if (!record || record.status === 'AWAITING_UPLOAD') return undefined;
  reply.header('tus-resumable', '1.0.0').header('cache-control', 'no-store');
  if (record.status === 'FAILED' && !record.sourceKey) return reply.status(410).send();
  return reply
    .status(200)
    .header('upload-offset', String(record.size))
    .header('upload-length', String(record.size))
    .send();
}

/** The tus server of the upload route: pre-created uploads only (HEAD, PATCH, DELETE), each URL signed. */
export function createTusServer(options: UploadsOptions): TusServer {
  const { store, signer } = options;
  return new TusServer({
    path: UPLOADS_PATH,
    datastore: options.datastore,
    maxSize: Math.max(...Object.values(options.maxBytes)),
    // The gateway answers CORS (preflights included); the tus server adds no Access-Control-Allow-Origin.
    allowedOrigins: () => false,
    // The id is the path's last segment (the default would take the query string with it).
    getFileIdFromRequest: (req) => {
      const id = new URL(req.url).pathname.split('/').pop() ?? '';
      return UUID.test(id) ? id : undefined;
    },
    async onIncomingRequest(req, id) {
      const check = signer.checkUpload(id, new URL(req.url).searchParams.get('t'));
      if (check === 'invalid') throw tusError(403, 'This upload URL is not valid');
      if (check === 'expired') throw tusError(403, 'This upload URL has expired: start a new upload');
      const record = await store.find(id);
      if (!record) throw tusError(404, 'No such upload');
      if (record.status !== 'AWAITING_UPLOAD' && req.method === 'PATCH') {
        throw tusError(409, 'This upload is complete');
      }
    },
    async onUploadFinish(_req, upload) {
      await finishUpload(options, upload.id);
      return {};
    },
    onResponseError(_req, error) {
      if ('status_code' in error) return undefined;
      options.logger?.error({ err: errorMessage(error) }, 'upload failed');
      return { status_code: 500, body: 'The upload could not be completed; try again\n' };
    },
  });
}

/**
 * The upload route on the media service (the gateway forwards `/media/uploads/…` to it): the bytes stream
 * through to the staging without fastify reading them. Uploads are created by the `createUpload` mutation only,
 * so POST (tus creation) and GET are refused.
 */
export async function registerUploadRoutes(
  app: FastifyInstance,
  tus: TusServer,
  options: UploadsOptions,
): Promise<void> {
  await app.register(async (scope) => {
    // The body is tus's to read.
    scope.addContentTypeParser('application/offset+octet-stream', (_request, _payload, done) => done(null));
    scope.route({
      method: ['HEAD', 'PATCH', 'DELETE', 'OPTIONS'],
      url: `${UPLOADS_PATH}/:id`,
      handler: async (request, reply) => {
        if (request.method === 'HEAD') {
          const { id } = request.params as { id: string };
          const { t } = request.query as { t?: string };
          const answered = await headOfSettled(options, id, t, reply);
          if (answered) return answered;
        }
        reply.hijack();
        await tus.handle(request.raw, reply.raw);
      },
    });
    for (const url of [UPLOADS_PATH, `${UPLOADS_PATH}/*`]) {
      scope.route({
        method: ['GET', 'POST', 'PUT'],
        url,
        exposeHeadRoute: false,
        handler: async (_request, reply) => {
          reply.header('allow', 'HEAD, PATCH, DELETE, OPTIONS');
          return sendHttpError(
            reply,
            405,
            'Uploads are created with the createUpload mutation',
            'BAD_USER_INPUT',
          );
        },
      });
    }
  });
}
