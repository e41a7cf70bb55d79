import { idCursor } from '@aiva/shared';

/** Opaque pagination cursors of the user list: base64url of `u:<id>`. */
const cursor = idCursor('u:');

export const encodeCursor = cursor.encode;
/** The id inside a cursor; BAD_USER_INPUT (field `after`) for anything that is not a cursor we made. */
export const decodeCursor = cursor.decode;
