/** Longest file name kept, in UTF-8 bytes (most file systems' limit). */
const MAX_FILENAME_BYTES = 255;

/**
 * A file name safe to store, show and send back in a Content-Disposition header: the last path segment only,
 * Unicode NFC, without control characters, path or shell-special characters, leading dots or surrounding
 * spaces, at most 255 bytes (the extension kept). Nothing left: `file`.
 */
export function sanitizeFilename(name: string): string {
  const last = name.normalize('NFC').split(/[/\\]/).pop() ?? '';
  let clean = last
    // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
    .replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '')
    .replace(/["<>:|?*`$]/g, '_')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^\.+/, '');
  if (Buffer.byteLength(clean) > MAX_FILENAME_BYTES) {
    const dot = clean.lastIndexOf('.');
    const ext = dot > 0 && clean.length - dot <= 16 ? clean.slice(dot) : '';
    let stem = clean.slice(0, clean.length - ext.length);
    while (Buffer.byteLength(stem + ext) > MAX_FILENAME_BYTES) stem = Array.from(stem).slice(0, -1).join('');
    clean = stem + ext;
  }
  return clean || 'file';
}

/** The name with its extension replaced (a PNG sent as `x.pdf` is served as `x.png`). */
export function withExtension(name: string, ext: string): string {
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 ? name.slice(0, dot) : name;
  return `${stem}.${ext}`;
}

/**
 * A Content-Disposition header value: an ASCII fallback `filename` (RFC 6266) and the exact name as
 * `filename*` (RFC 5987) for clients that read it.
 */
export function contentDisposition(type: 'inline' | 'attachment', filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `${type}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
