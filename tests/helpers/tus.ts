// A tus 1.0 client over fetch, as small as the protocol: HEAD for the offset, PATCH from there. Tests use it to
// send exactly the bytes they mean (half a file, then the rest) through the gateway's public port.

const TUS = { 'tus-resumable': '1.0.0' };

/** The server's offset of an upload (HEAD), or the failed response. */
export async function tusOffset(uploadUrl: string): Promise<number> {
  const response = await fetch(uploadUrl, { method: 'HEAD', headers: TUS });
  if (!response.ok) throw new Error(`HEAD ${response.status}`);
  return Number(response.headers.get('upload-offset'));
}

/** One PATCH of `bytes` at `offset`. */
export function tusPatch(uploadUrl: string, bytes: Uint8Array, offset: number): Promise<Response> {
  return fetch(uploadUrl, {
    method: 'PATCH',
    headers: { ...TUS, 'upload-offset': String(offset), 'content-type': 'application/offset+octet-stream' },
    body: new Uint8Array(bytes),
  });
}

/** Sends what the server lacks of `bytes`, resuming from its offset; the last PATCH's response. */
export async function tusUpload(
  uploadUrl: string,
  bytes: Uint8Array,
  chunkSize = 1024 * 1024,
): Promise<Response> {
  let offset = await tusOffset(uploadUrl);
  let last: Response | undefined;
  while (offset < bytes.length) {
    last = await tusPatch(uploadUrl, bytes.subarray(offset, offset + chunkSize), offset);
    if (last.status !== 204) return last;
    offset = Number(last.headers.get('upload-offset'));
  }
  if (!last) throw new Error('nothing to upload');
  return last;
}
