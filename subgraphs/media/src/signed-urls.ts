import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SealingKeys } from '@aiva/shared';

/** Download URLs end on a multiple of this, so one file's URL stays the same for a while (cacheable). */
const EXPIRY_STEP_SECONDS = 300;

export type UrlCheck = 'valid' | 'expired' | 'invalid';

/** What a signature covers: the purpose, the media item, the rendition (downloads), the end. */
function payload(purpose: 'upload' | 'download', mediaId: string, variant: string, expires: number): string {
  return `aiva-media\n${purpose}\n${mediaId}\n${variant}\n${expires}`;
}

/**
 * Signed, expiring URLs for uploads (`/media/uploads/<id>?t=…`) and downloads (`/media/files/<id>/<variant>?t=…`):
 * `t` is `<kid>.<expires (unix seconds)>.<HMAC-SHA256, base64url>`. The first key signs, every key verifies, so
 * keys rotate without breaking the URLs already out. Nothing else grants access to the bytes.
 */
export class UrlSigner {
  constructor(
    private readonly keys: SealingKeys,
    /** The public base URL (the gateway's), without a trailing slash. */
    private readonly baseUrl: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  uploadUrl(mediaId: string, expiresAt: Date): string {
    const expires = Math.floor(expiresAt.getTime() / 1000);
    return `${this.baseUrl}/media/uploads/${mediaId}?t=${this.token('upload', mediaId, '', expires)}`;
  }

  /** A download URL valid for at least `ttlSeconds` (rounded up to a step so it can be cached). */
  downloadUrl(mediaId: string, variant: string, ttlSeconds: number, now = Date.now()): string {
    const earliest = Math.floor(now / 1000) + ttlSeconds;
    const expires = Math.ceil(earliest / EXPIRY_STEP_SECONDS) * EXPIRY_STEP_SECONDS;
    const token = this.token('download', mediaId, variant, expires);
    return `${this.baseUrl}/media/files/${mediaId}/${encodeURIComponent(variant)}?t=${token}`;
  }

  checkUpload(mediaId: string, token: string | null | undefined, now = Date.now()): UrlCheck {
    return this.check('upload', mediaId, '', token, now);
  }

  checkDownload(
    mediaId: string,
    variant: string,
    token: string | null | undefined,
    now = Date.now(),
  ): UrlCheck {
    return this.check('download', mediaId, variant, token, now);
  }

  /** When a valid token ends (for Cache-Control), in unix seconds. */
  static expiresOf(token: string): number {
    return Number(token.split('.')[1] ?? 0);
  }

  private token(purpose: 'upload' | 'download', mediaId: string, variant: string, expires: number): string {
    const { kid, key } = this.keys.current;
    const mac = createHmac('sha256', key)
      .update(payload(purpose, mediaId, variant, expires))
      .digest('base64url');
    return `${kid}.${expires}.${mac}`;
  }

  private check(
    purpose: 'upload' | 'download',
    mediaId: string,
    variant: string,
    token: string | null | undefined,
    now: number,
  ): UrlCheck {
    const parts = token?.split('.') ?? [];
    if (parts.length !== 3) return 'invalid';
    const [kid = '', expiresText = '', mac = ''] = parts;
    const key = this.keys.all.get(kid);
    if (!key || !/^\d{1,12}$/.test(expiresText)) return 'invalid';
    const expires = Number(expiresText);
    const expected = createHmac('sha256', key.key)
      .update(payload(purpose, mediaId, variant, expires))
      .digest();
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    // Only the canonical spelling: base64url's last character has spare bits, which decoding ignores.
    if (given.toString('base64url') !== mac) return 'invalid';
    return expires * 1000 <= now ? 'expired' : 'valid';
  }
}
