import { badUserInput } from '@aiva/shared';

/** Opaque pagination cursors: base64url of `u:<id>`. Ids are UUIDv7, so id order is creation order. */
const PREFIX = 'u:';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeCursor(id: string): string {
  return Buffer.from(`${PREFIX}${id}`, 'utf8').toString('base64url');
}

/** The id inside a cursor; BAD_USER_INPUT (field `after`) for anything that is not a cursor we made. */
export function decodeCursor(cursor: string): string {
  const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const id = text.startsWith(PREFIX) ? text.slice(PREFIX.length) : '';
  if (!UUID.test(id))
    throw badUserInput('Invalid after: not a cursor returned by this API', { field: 'after' });
  return id;
}
