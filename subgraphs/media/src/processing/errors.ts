/**
 * Why a file was refused. A stable code the integrator can store next to the upload and map to a user-facing
 * message or to a retry policy (e.g. PROCESSING_TIMEOUT may be worth one retry on a quieter machine).
 */
export type MediaRejectionReason =
  | 'TYPE_NOT_ALLOWED'
  | 'IMAGE_TOO_LARGE'
  | 'UNREADABLE_IMAGE'
  | 'UNREADABLE_MEDIA'
  | 'MEDIA_TOO_LONG'
  | 'VIDEO_TOO_LARGE'
  | 'UNREADABLE_DOCUMENT'
  | 'PROCESSING_TIMEOUT';

/**
 * A permanent refusal of an uploaded file: processing it again will not help. The message is written for people
 * (it may be shown to the uploader) and never contains paths or tool output; `reason` is the machine-readable
 * code. Anything else thrown by the pipelines is an internal failure (a bug or a broken environment).
 */
export class MediaRejectedError extends Error {
  readonly reason: MediaRejectionReason;
  constructor(reason: MediaRejectionReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MediaRejectedError';
    this.reason = reason;
  }
}

/** Narrowing helper for callers that catch `unknown`. */
export function isMediaRejectedError(error: unknown): error is MediaRejectedError {
  return error instanceof MediaRejectedError;
}
