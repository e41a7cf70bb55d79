import { badUserInput } from './errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface IdCursor {
  encode(id: string): string;
  /** The id inside a cursor; BAD_USER_INPUT (field `after`) for anything that is not a cursor this API made. */
  decode(cursor: string): string;
}

/**
 * Opaque keyset-pagination cursors over UUID ids: base64url of `<prefix><id>` (the prefix tells one list's
 * cursors from another's). Ids are UUIDv7, so id order is creation order.
 */
export function idCursor(prefix: string): IdCursor {
  return {
    encode: (id) => Buffer.from(`${prefix}${id}`, 'utf8').toString('base64url'),
    decode(cursor) {
      const text = /^[A-Za-z0-9_-]{1,200}$/.test(cursor)
        ? Buffer.from(cursor, 'base64url').toString('utf8')
        : '';
      const id = text.startsWith(prefix) ? text.slice(prefix.length) : '';
      if (!UUID.test(id))
        throw badUserInput('Invalid after: not a cursor returned by this API', { field: 'after' });
      return id;
    },
  };
}
