import { generateSealingKey, loadConfig, sealingKeys } from '@aiva/shared';
import { describe, expect, it } from 'vitest';
import { mediaEnvSchema } from '../src/config.js';
import { contentDisposition, sanitizeFilename } from '../src/filenames.js';
import { parseRange } from '../src/http/files.js';
import { UrlSigner } from '../src/signed-urls.js';

const ID = '01890000-0000-7000-8000-000000000001';
const OTHER = '01890000-0000-7000-8000-000000000002';

describe('MEDIA_URL_KEYS', () => {
  it('is refused at start when malformed, saying what is wrong without echoing the key', () => {
    const short = Buffer.alloc(16, 7).toString('base64url');
    expect(() => loadConfig(mediaEnvSchema, { MEDIA_URL_KEYS: `k1:${short}` })).toThrow(
      /MEDIA_URL_KEYS: entry 1 \(k1\) is not a 32-byte key/,
    );
    expect(() => loadConfig(mediaEnvSchema, { MEDIA_URL_KEYS: `k1:${short}` })).not.toThrow(short);
    const key = Buffer.alloc(32, 9).toString('base64url');
    expect(loadConfig(mediaEnvSchema, { MEDIA_URL_KEYS: `k2:${key}` }).MEDIA_URL_KEYS).toBe(`k2:${key}`);
  });
});

describe('signed URLs', () => {
  const current = generateSealingKey();
  const signer = new UrlSigner(sealingKeys([current]), 'https://api.example.test/');
  const tokenOf = (url: string) => new URL(url).searchParams.get('t');

  it('open exactly the item, rendition and purpose they were made for, until they end', () => {
    const url = signer.downloadUrl(ID, 'thumbnail.webp', 60);
    expect(url).toMatch(/^https:\/\/api\.example\.test\/media\/files\/[0-9a-f-]{36}\/thumbnail\.webp\?t=/);
    const token = tokenOf(url);
    expect(signer.checkDownload(ID, 'thumbnail.webp', token)).toBe('valid');
    expect(signer.checkDownload(ID, 'large.webp', token)).toBe('invalid');
    expect(signer.checkDownload(OTHER, 'thumbnail.webp', token)).toBe('invalid');
    expect(signer.checkUpload(ID, token)).toBe('invalid');
    expect(signer.checkDownload(ID, 'thumbnail.webp', `${token}x`)).toBe('invalid');
    // The same MAC spelt with other spare bits in its last character (a canonical one has them zero).
    const last = token?.at(-1) ?? '';
    expect('AEIMQUYcgkosw048').toContain(last);
    const respelt = `${token?.slice(0, -1)}${String.fromCharCode(last.charCodeAt(0) + 1)}`;
    expect(signer.checkDownload(ID, 'thumbnail.webp', respelt)).toBe('invalid');
    expect(signer.checkDownload(ID, 'thumbnail.webp', null)).toBe('invalid');
    // At least the TTL, at most one rounding step more.
    const ends = UrlSigner.expiresOf(token ?? '') * 1000;
    expect(ends).toBeGreaterThanOrEqual(Date.now() + 59_000);
    expect(signer.checkDownload(ID, 'thumbnail.webp', token, ends)).toBe('expired');
  });

  it('upload URLs end when told, and survive a key rotation while the old key is listed', () => {
    const ends = new Date(Date.now() + 10_000);
    const token = tokenOf(signer.uploadUrl(ID, ends));
    expect(signer.checkUpload(ID, token)).toBe('valid');
    expect(signer.checkUpload(ID, token, ends.getTime() + 1)).toBe('expired');
    const rotated = new UrlSigner(sealingKeys([generateSealingKey(), current]), 'https://api.example.test');
    expect(rotated.checkUpload(ID, token)).toBe('valid');
    const forgotten = new UrlSigner(sealingKeys([generateSealingKey()]), 'https://api.example.test');
    expect(forgotten.checkUpload(ID, token)).toBe('invalid');
  });
});

describe('file names', () => {
  it('keep the last segment, without control, path or shell characters, within 255 bytes', () => {
    expect(sanitizeFilename('../../etc/passwd')).toBe('passwd');
    expect(sanitizeFilename('C:\\Users\\me\\photo.JPG')).toBe('photo.JPG');
    expect(sanitizeFilename('a\u0000b\u202ec.txt')).toBe('abc.txt');
    expect(sanitizeFilename('  .hidden  ')).toBe('hidden');
    expect(sanitizeFilename('"quoted" <x>|y?.png')).toBe('_quoted_ _x__y_.png');
    expect(sanitizeFilename('...')).toBe('file');
    const long = sanitizeFilename(`${'é'.repeat(300)}.jpeg`);
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(255);
    expect(long.endsWith('.jpeg')).toBe(true);
  });

  it('travel in Content-Disposition as an ASCII fallback and the exact UTF-8 name', () => {
    expect(contentDisposition('inline', 'Grüße (1).jpg')).toBe(
      `inline; filename="Gr__e (1).jpg"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%281%29.jpg`,
    );
  });
});

describe('byte ranges', () => {
  it('are read as RFC 9110 says, one range at a time', () => {
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-1', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
  });
});
