import { sendHttpError } from '@aiva/shared';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { contentDisposition } from '../filenames.js';
import { UrlSigner } from '../signed-urls.js';
import { type ByteRange, type FileStorage, StorageNotFoundError } from '../storage/index.js';
import type { MediaRecord, MediaStore } from '../store/media.store.js';

/** Where files are served: `<MEDIA_PUBLIC_URL>/media/files/<media id>/<rendition>?t=<signature>`. */
export const FILES_PATH = '/media/files';

/** The rendition name of an item's uploaded bytes (documents, video, audio; never images: see `fileOf`). */
export const SOURCE = 'source';
/** The rendition name of a document's extracted text. */
export const TEXT = 'text.txt';

export interface FilesOptions {
  store: MediaStore;
  storage: FileStorage;
  signer: UrlSigner;
}

/**
 * What a rendition name of an item serves: its renditions, its text, and its uploaded bytes except for images,
 * whose uploaded bytes may carry metadata (EXIF GPS): an image is only ever served re-encoded.
 */
export function fileOf(record: MediaRecord, name: string): { key: string; mimeType: string } | undefined {
  if (name === SOURCE) {
    return record.kind !== 'IMAGE' && record.sourceKey && record.status === 'READY'
      ? { key: record.sourceKey, mimeType: record.mimeType }
      : undefined;
  }
  if (name === TEXT) {
    return record.textKey ? { key: record.textKey, mimeType: 'text/plain; charset=utf-8' } : undefined;
  }
  const variant = record.variants.find((v) => v.name === name);
  return variant ? { key: variant.key, mimeType: variant.mimeType } : undefined;
}

/** The download name of a rendition: `photo.jpg` → `photo-thumbnail.webp`; the source keeps the item's name. */
function downloadName(record: MediaRecord, name: string): string {
  if (name === SOURCE) return record.filename;
  const dot = record.filename.lastIndexOf('.');
  const stem = dot > 0 ? record.filename.slice(0, dot) : record.filename;
  return `${stem}-${name}`;
}

/**
 * One `Range: bytes=…` of an object of `size` bytes (multiple ranges are served whole, as RFC 9110 allows);
 * undefined for the whole object, 'unsatisfiable' for a range past the end.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): ByteRange | undefined | 'unsatisfiable' {
  const match = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!match) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return undefined;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Headers every served file gets: typed, never sniffed, never run as a page, cacheable until its URL ends. */
function fileHeaders(
  reply: FastifyReply,
  record: MediaRecord,
  name: string,
  mimeType: string,
  token: string,
) {
  const inline = ['IMAGE', 'VIDEO', 'AUDIO'].includes(record.kind) && name !== TEXT;
  const maxAge = Math.max(0, UrlSigner.expiresOf(token) - Math.floor(Date.now() / 1000));
  reply
    .header('content-type', mimeType)
    .header(
      'content-disposition',
      contentDisposition(inline ? 'inline' : 'attachment', downloadName(record, name)),
    )
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', "default-src 'none'; sandbox")
    .header('cross-origin-resource-policy', 'cross-origin')
    .header('accept-ranges', 'bytes')
    .header('cache-control', `${record.visibility === 'PUBLIC' ? 'public' : 'private'}, max-age=${maxAge}`)
    .header('etag', `"${record.sha256 ?? record.id}-${name}"`);
}

/**
 * The download route (the gateway forwards `/media/files/…`): a valid, unexpired signature for exactly this item
 * and rendition is the only access check, so links can be handed to `<img>` tags and other origins. Ranges are
 * served (video seeking); a deleted item's URLs answer 404.
 */
export async function registerFileRoutes(app: FastifyInstance, options: FilesOptions): Promise<void> {
  const { store, storage, signer } = options;
  app.route<{ Params: { id: string; name: string }; Querystring: { t?: string } }>({
    method: ['GET', 'HEAD'],
    url: `${FILES_PATH}/:id/:name`,
    exposeHeadRoute: false,
    handler: async (request, reply) => {
      const { id, name } = request.params;
      const token = request.query.t;
      const check = signer.checkDownload(id, name, token);
      if (check !== 'valid' || !token) {
        const message =
          check === 'expired' ? 'This download URL has expired' : 'This download URL is not valid';
        return sendHttpError(reply, 403, message, 'FORBIDDEN');
      }
      const record = await store.find(id);
      const file = record ? fileOf(record, name) : undefined;
      if (!record || !file) return sendHttpError(reply, 404, 'No such file', 'NOT_FOUND');
      const info = await storage.stat(file.key);
      if (!info) return sendHttpError(reply, 404, 'No such file', 'NOT_FOUND');
      fileHeaders(reply, record, name, file.mimeType, token);
      if (request.headers['if-none-match'] === `"${record.sha256 ?? record.id}-${name}"`) {
        return reply.status(304).send();
      }
      const range = parseRange(request.headers.range, info.size);
      if (range === 'unsatisfiable') {
        reply.header('content-range', `bytes */${info.size}`);
        return sendHttpError(reply, 416, 'The range is outside the file', 'BAD_USER_INPUT');
      }
      const length = range ? range.end - range.start + 1 : info.size;
      reply.header('content-length', String(length));
      if (range) reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${info.size}`);
      if (request.method === 'HEAD') return reply.send();
      try {
        const object = await storage.get(file.key, range);
        return reply.send(object.body);
      } catch (error) {
        if (error instanceof StorageNotFoundError)
          return sendHttpError(reply, 404, 'No such file', 'NOT_FOUND');
        throw error;
      }
    },
  });
}
