import {
  AivaError,
  badUserInput,
  callSubgraph,
  forbidden,
  notFound,
  routedCall,
  type ServiceRouter,
} from '@aiva/shared';

/** The subgraph that owns files. */
const MEDIA = 'media';

/** Where media serves its files and takes uploads; a signed URL's path must be under one of these. */
const FILES_PATH = '/media/files/';
const UPLOADS_PATH = '/media/uploads/';

/** A file the AI made, to be stored as a person's media. */
export interface MadeFile {
  filename: string;
  mimeType: string;
  bytes: Uint8Array;
}

/** A person's audio or video, read for transcription. */
export interface SourceFile {
  id: string;
  kind: string;
  mimeType: string;
  filename: string;
  bytes: Uint8Array;
}

/** What ai does with the media subgraph, as the `service:ai` caller. */
export interface MediaClient {
  /**
   * Stores a file as a new private media item of `ownerId` through media's own upload flow (`createUpload` for
   * the person, then one tus PATCH of the bytes), so it is typed, counted in the person's quota and processed
   * like any upload. Media's refusals (quota, type) come back as media gave them. Answers the item's id.
   */
  store(ownerId: string, file: MadeFile, signal?: AbortSignal): Promise<string>;
  /**
   * The uploaded bytes of one of the person's audio or video items: NOT_FOUND when there is none, FORBIDDEN when
   * it is someone else's, BAD_USER_INPUT when it is another kind, not uploaded yet, or over `maxBytes`.
   */
  readAudio(personId: string, mediaId: string, maxBytes: number, signal?: AbortSignal): Promise<SourceFile>;
  /** The extracted text of a document, from the signed URL of its processed event; at most `maxChars`. */
  readText(textUrl: string, maxChars: number, signal?: AbortSignal): Promise<string>;
}

export interface MediaClientOptions {
  router: ServiceRouter;
  /** A fresh service token of ai's (see `createServiceTokenSource`). */
  token(signal?: AbortSignal): Promise<string>;
  /** Deadline of one call, in ms; default 30 s. */
  timeoutMs?: number;
}

/** What ai reads of a media item. */
export interface MediaFacts {
  id: string;
  owner: { id: string };
  kind: string;
  mimeType: string;
  filename: string;
  size: number;
  status: string;
  url: string | null;
}

/** The path and query of a signed media URL (its host is the public one; the signature is what counts). */
function signedPath(url: string, under: string): string {
  const parsed = new URL(url);
  if (!parsed.pathname.startsWith(under)) throw new Error(`not a media URL under ${under}`);
  return `${parsed.pathname}${parsed.search}`;
}

/** The first `maxBytes` bytes of a response body; the rest is not read (the body is cancelled). */
async function readAtMost(
  response: Response,
  maxBytes: number,
): Promise<{ bytes: Uint8Array; cut: boolean }> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  let cut = false;
  const reader = response.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    if (length + value.length > maxBytes) {
      chunks.push(value.subarray(0, maxBytes - length));
      length = maxBytes;
      cut = true;
      await reader.cancel();
      break;
    }
    chunks.push(value);
    length += value.length;
  }
  return { bytes: Buffer.concat(chunks, length), cut };
}

/** Why an item's file cannot be read yet, or at all: media serves it once the item is READY. */
function notReadable(status: string): AivaError {
  if (status === 'FAILED') {
    return badUserInput('This media could not be processed', { field: 'mediaId', reason: 'MEDIA_FAILED' });
  }
  if (status === 'AWAITING_UPLOAD') {
    return badUserInput('This media has not been uploaded yet', { field: 'mediaId', reason: 'NOT_UPLOADED' });
  }
  return badUserInput('This media is still being processed; try again once its status is READY', {
    field: 'mediaId',
    reason: 'NOT_READY',
  });
}

/**
 * The media subgraph as ai uses it. Every call goes to an instance of media from the routing table, never the
 * public gateway and never media's storage: GraphQL with ai's service token, files and uploads by their signed
 * URLs (whose host, the public one, is replaced by the instance's).
 */
export function createMediaClient(options: MediaClientOptions): MediaClient {
  const timeoutMs = options.timeoutMs ?? 30_000;

  async function graphql<T>(
    query: string,
    variables: Record<string, unknown>,
    retryable: boolean,
    signal?: AbortSignal,
  ): Promise<T> {
    return callSubgraph<T>({
      router: options.router,
      service: MEDIA,
      token: await options.token(signal),
      query,
      variables,
      retryable,
      timeoutMs,
      ...(signal ? { signal } : {}),
    });
  }

  /**
   * GETs a signed file URL on a media instance: the body's first `maxBytes` bytes (the rest is not read), and
   * whether there was more.
   */
  async function download(
    url: string,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<{ bytes: Uint8Array; cut: boolean }> {
    const path = signedPath(url, FILES_PATH);
    return routedCall(
      options.router,
      MEDIA,
      { retryable: true, timeoutMs, ...(signal ? { signal } : {}) },
      async (endpoint, attemptSignal) => {
        const response = await fetch(`${endpoint.url}${path}`, { signal: attemptSignal });
        if (response.status === 503) {
          await response.body?.cancel();
          return { value: { bytes: new Uint8Array(), cut: false }, outcome: 'error', refused: true };
        }
        if (!response.ok) {
          await response.body?.cancel();
          throw new AivaError('INTERNAL_SERVER_ERROR', `The media service answered ${response.status}`);
        }
        return { value: await readAtMost(response, maxBytes), outcome: 'success' };
      },
    );
  }

  return {
    async store(ownerId, file, signal) {
      const created = await graphql<{ createUpload: { uploadUrl: string; media: { id: string } } }>(
        `mutation AiStoreMedia($input: CreateUploadInput!) {
          createUpload(input: $input) { uploadUrl media { id } }
        }`,
        {
          input: {
            filename: file.filename,
            mimeType: file.mimeType,
            size: file.bytes.length,
            visibility: 'PRIVATE',
            ownerId,
          },
        },
        false,
        signal,
      );
      const { uploadUrl, media } = created.createUpload;
      const path = signedPath(uploadUrl, UPLOADS_PATH);
      // One PATCH with every byte: the upload is complete (typed, stored, queued for processing) when it answers.
      const status = await routedCall(
        options.router,
        MEDIA,
        { retryable: false, timeoutMs, ...(signal ? { signal } : {}) },
        async (endpoint, attemptSignal) => {
          const response = await fetch(`${endpoint.url}${path}`, {
            method: 'PATCH',
            headers: {
              'tus-resumable': '1.0.0',
              'upload-offset': '0',
              'content-type': 'application/offset+octet-stream',
            },
            // A copy typed as the fetch body wants it (an ArrayBuffer-backed view).
            body: new Uint8Array(file.bytes),
            signal: attemptSignal,
          });
          await response.body?.cancel();
          return { value: response.status, outcome: response.status >= 500 ? 'error' : 'success' };
        },
      ).catch(() => 0);
      if (status !== 204) {
        throw new AivaError(
          'INTERNAL_SERVER_ERROR',
          status === 415
            ? 'The AI provider answered a file media does not accept'
            : 'The media service could not store the file',
          { serviceName: MEDIA },
        );
      }
      return media.id;
    },

    async readAudio(personId, mediaId, maxBytes, signal) {
      const { media } = await graphql<{ media: MediaFacts | null }>(
        `query AiReadMedia($id: ID!) {
          media(id: $id) { id owner { id } kind mimeType filename size status url }
        }`,
        { id: mediaId },
        true,
        signal,
      );
      if (!media) throw notFound('No such media');
      if (media.owner.id !== personId) throw forbidden('This media belongs to someone else');
      if (media.kind !== 'AUDIO' && media.kind !== 'VIDEO') {
        throw badUserInput('Only audio and video can be transcribed', { field: 'mediaId' });
      }
      if (!media.url || media.status !== 'READY') throw notReadable(media.status);
      if (media.size > maxBytes) {
        throw badUserInput(`Files to transcribe may have at most ${maxBytes} bytes`, {
          field: 'mediaId',
          limit: maxBytes,
        });
      }
      const { bytes, cut } = await download(media.url, maxBytes, signal);
      if (cut)
        throw badUserInput(`Files to transcribe may have at most ${maxBytes} bytes`, { field: 'mediaId' });
      return {
        id: media.id,
        kind: media.kind,
        mimeType: media.mimeType,
        filename: media.filename,
        bytes,
      };
    },

    async readText(textUrl, maxChars, signal) {
      // UTF-8 takes at most 4 bytes a character.
      const { bytes } = await download(textUrl, maxChars * 4, signal);
      return new TextDecoder().decode(bytes).slice(0, maxChars);
    },
  };
}
