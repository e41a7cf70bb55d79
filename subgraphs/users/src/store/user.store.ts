import type { AivaEvent, OutboxStore, Page, PageRequest, RecordFields } from '@aiva/shared';

/** A user profile as the users subgraph stores it. */
export interface UserRecord {
  id: string; // UUIDv7: ordering by id is ordering by creation
  email: string; // as entered; unique case-insensitively
  username: string; // unique case-insensitively
  firstName: string;
  lastName: string;
  displayName: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/** How each field of a user is stored, for both adapters (`sqliteTable`, `mongoCollection`). */
export const USER_FIELDS: RecordFields<UserRecord> = {
  id: 'string',
  email: 'string',
  username: 'string',
  firstName: 'string',
  lastName: 'string',
  displayName: 'value',
  createdAt: 'date',
  updatedAt: 'date',
};

export type UserPatch = Partial<
  Pick<UserRecord, 'email' | 'username' | 'firstName' | 'lastName' | 'displayName'>
>;

export interface UserPage {
  users: UserRecord[];
  hasNextPage: boolean;
}

/**
 * The persistence port of the users subgraph. Every write stores its event in the outbox in the same
 * transaction. Unique violations throw `conflict(..., { field: 'email' | 'username' })` from @aiva/shared and
 * write nothing.
 */
export interface UserStore extends OutboxStore {
  readonly kind: 'sqlite' | 'mongo';
  insert(user: UserRecord, event: AivaEvent): Promise<UserRecord>;
  findById(id: string): Promise<UserRecord | null>;
  /** One query for all ids; unknown ids are absent from the result; order not guaranteed. */
  findByIds(ids: readonly string[]): Promise<UserRecord[]>;
  /** Ordered by id ascending; `afterId` excludes that id and everything before it. */
  list(page: { first: number; afterId?: string }): Promise<UserPage>;
  count(): Promise<number>;
  /** Applies the patch and sets `updatedAt`; null when the id is unknown (nothing written). */
  update(
    id: string,
    patch: UserPatch,
    updatedAt: Date,
    makeEvent: (updated: UserRecord) => AivaEvent,
  ): Promise<UserRecord | null>;
  /** False when the id is unknown (nothing written). */
  remove(id: string, makeEvent: (removed: UserRecord) => AivaEvent): Promise<boolean>;
  /**
   * Applies an email the owner of emails (auth) changed, idempotently by event: when `consumer` already processed
   * `eventId` nothing happens (`duplicate`); else the profile's email becomes `email` with its event (`updated`),
   * or stays when it is already that (`unchanged`) or the profile is gone (`missing`), and the event id is
   * recorded, in the same transaction as the change. A taken email throws CONFLICT (field `email`), writing
   * nothing.
   */
  syncEmail(
    change: { consumer: string; eventId: string; userId: string; email: string; at: Date },
    makeEvent: (updated: UserRecord) => AivaEvent,
  ): Promise<'updated' | 'unchanged' | 'missing' | 'duplicate'>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The reads both adapters serve from the store kit (a SQLite table and pager, a MongoDB collection). */
export interface UserSource {
  findById(id: string): UserRecord | null | Promise<UserRecord | null>;
  findByIds(ids: readonly string[]): UserRecord[] | Promise<UserRecord[]>;
  page(request: PageRequest): Page<UserRecord> | Promise<Page<UserRecord>>;
  count(): number | Promise<number>;
}

/** The port's read methods over the kit's reads: the same mapping for both adapters. */
export function userQueries(
  source: UserSource,
): Pick<UserStore, 'findById' | 'findByIds' | 'list' | 'count'> {
  return {
    async findById(id) {
      return source.findById(id);
    },
    async findByIds(ids) {
      return source.findByIds(ids);
    },
    async list({ first, afterId }) {
      const page = await source.page({ first, afterId });
      return { users: page.items, hasNextPage: page.hasNextPage };
    },
    async count() {
      return source.count();
    },
  };
}
