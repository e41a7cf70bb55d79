import { type FileTypeResult, fileTypeFromBuffer, fileTypeFromFile } from 'file-type';
import { MediaRejectedError } from './errors.js';

/** The four families the media subgraph processes; each has its own pipeline. */
export type MediaKind = 'IMAGE' | 'VIDEO' | 'AUDIO' | 'DOCUMENT';

/** What the bytes of a file say it is, in canonical form (see ALLOWED_TYPES). */
export interface Sniffed {
  mimeType: string;
  ext: string;
  kind: MediaKind;
}

/**
 * The allow-list, canonical MIME type -> kind. Only these are accepted; the type always comes from the bytes,
 * never from the file name or the client's declaration. A container that may hold audio only (mp4, webm, mkv,
 * mov) is listed as VIDEO here; the AV pipeline corrects the kind from the streams it finds.
 */
export const ALLOWED_TYPES: Record<string, MediaKind> = {
  'image/jpeg': 'IMAGE',
  'image/png': 'IMAGE',
  'image/webp': 'IMAGE',
  'image/gif': 'IMAGE',
  'image/avif': 'IMAGE',
  'image/tiff': 'IMAGE',
  'video/mp4': 'VIDEO',
  'video/webm': 'VIDEO',
  'video/quicktime': 'VIDEO',
  'video/x-matroska': 'VIDEO',
  'audio/mpeg': 'AUDIO',
  'audio/mp4': 'AUDIO',
  'audio/ogg': 'AUDIO',
  'audio/wav': 'AUDIO',
  'audio/flac': 'AUDIO',
  'audio/aac': 'AUDIO',
  'audio/webm': 'AUDIO',
  'application/pdf': 'DOCUMENT',
};

/**
 * Other spellings of allowed types, -> the canonical one. Some come from file-type 21 itself (`video/matroska`,
 * `audio/x-m4a`, `image/apng`, `audio/ogg; codecs=opus` once parameters are dropped), others are what browsers
 * and clients commonly declare (`audio/x-wav`, `image/jpg`, `audio/mp3`).
 */
const MIME_ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'image/apng': 'image/png',
  'video/matroska': 'video/x-matroska',
  'video/x-m4v': 'video/mp4',
  'audio/x-m4a': 'audio/mp4',
  'audio/m4a': 'audio/mp4',
  'audio/mp3': 'audio/mpeg',
  'audio/x-mp3': 'audio/mpeg',
  'audio/x-wav': 'audio/wav',
  'audio/wave': 'audio/wav',
  'audio/vnd.wave': 'audio/wav',
  'audio/x-flac': 'audio/flac',
  'audio/x-aac': 'audio/aac',
  'audio/opus': 'audio/ogg',
};

/** Extensions file-type reports that we store under a more common name. */
const EXT_ALIASES: Record<string, string> = { apng: 'png' };

/**
 * The canonical allowed MIME type for any spelling (case, parameters such as `; codecs=opus`, aliases), or
 * undefined when the type is not on the allow-list.
 */
export function canonicalMimeType(mime: string): string | undefined {
  const bare = mime.split(';', 1)[0]?.trim().toLowerCase() ?? '';
  const canonical = MIME_ALIASES[bare] ?? bare;
  return Object.hasOwn(ALLOWED_TYPES, canonical) ? canonical : undefined;
}

/**
 * The kind for a MIME type as a client *declares* it (at createUpload), before any byte is seen, so an upload
 * of a disallowed type can be refused early. The bytes are sniffed again after the upload regardless.
 */
export function kindOfMimeType(mime: string): MediaKind | undefined {
  const canonical = canonicalMimeType(mime);
  return canonical === undefined ? undefined : ALLOWED_TYPES[canonical];
}

/** Maps a file-type detection onto the allow-list, or throws the refusal people will see. */
function toSniffed(detected: FileTypeResult | undefined): Sniffed {
  if (!detected) {
    throw new MediaRejectedError(
      'TYPE_NOT_ALLOWED',
      'The file type could not be recognised and is not allowed',
    );
  }
  const mimeType = canonicalMimeType(detected.mime);
  const kind = mimeType === undefined ? undefined : ALLOWED_TYPES[mimeType];
  if (mimeType === undefined || kind === undefined) {
    throw new MediaRejectedError('TYPE_NOT_ALLOWED', `The file type ${detected.mime} is not allowed`);
  }
  return { mimeType, ext: EXT_ALIASES[detected.ext] ?? detected.ext, kind };
}

/**
 * Reads the first bytes of a local file and returns its allowed type; throws MediaRejectedError
 * (TYPE_NOT_ALLOWED) for anything else: executables, scripts, archives, SVG/HTML, unknown bytes.
 */
export async function sniffFile(path: string): Promise<Sniffed> {
  return toSniffed(await fileTypeFromFile(path));
}

/**
 * Same as sniffFile for the start of a stream: pass at least the first 4100 bytes (more is better for some
 * containers such as webm, whose doc type may sit a little further in).
 */
export async function sniffBuffer(head: Uint8Array): Promise<Sniffed> {
  return toSniffed(await fileTypeFromBuffer(head));
}
