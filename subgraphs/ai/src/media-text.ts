import { routedCall, type ServiceRouter } from '@aiva/shared';

/**
 * The extracted text of a media item, fetched with the signed URL media put in its processed event — from an
 * instance of the media service picked from the routing table (never the public gateway, never media's storage).
 * The URL's path and signature are what count; its host is the public one, replaced here. At most `maxChars`.
 */
export async function fetchMediaText(
  router: ServiceRouter,
  textUrl: string,
  options: { maxChars: number; timeoutMs?: number; signal?: AbortSignal },
): Promise<string> {
  const url = new URL(textUrl);
  const pathAndQuery = `${url.pathname}${url.search}`;
  if (!url.pathname.startsWith('/media/files/')) throw new Error('not a media file URL');
  const text = await routedCall(
    router,
    'media',
    {
      retryable: true,
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.signal ? { signal: options.signal } : {}),
    },
    async (endpoint, signal) => {
      const response = await fetch(`${endpoint.url}${pathAndQuery}`, { signal });
      if (response.status === 503) {
        await response.body?.cancel();
        return { value: '', outcome: 'error', refused: true };
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new Error(`media answered ${response.status} for the text`);
      }
      const body = await response.text();
      return { value: body.slice(0, options.maxChars), outcome: 'success' };
    },
  );
  if (!text) throw new Error('the media service did not answer with the text');
  return text;
}
