import { type AivaEvent, createEvent, notFound, uuidv7 } from '@aiva/shared';
import type { UserPage, UserRecord, UserStore } from './store/user.store.js';
import type { CreateUserInput, UpdateUserInput } from './user.input.js';

export const EVENT_SOURCE = 'users';

/** Profile rules. Knows nothing of HTTP or GraphQL; inputs arrive already validated. */
export class UserService {
  constructor(
    private readonly store: UserStore,
    /** Called after each committed write so the outbox relay publishes soon. */
    private readonly onEventWritten: () => void = () => {},
  ) {}

  async create(input: CreateUserInput): Promise<UserRecord> {
    const now = new Date();
    const user: UserRecord = { id: uuidv7(now.getTime()), ...input, createdAt: now, updatedAt: now };
    const created = await this.store.insert(user, createdEvent(user));
    this.onEventWritten();
    return created;
  }

  findById(id: string): Promise<UserRecord | null> {
    return this.store.findById(id);
  }

  /** One store query for all ids; the result is aligned with `ids` (null where unknown). */
  async findByIds(ids: readonly string[]): Promise<(UserRecord | null)[]> {
    const found = await this.store.findByIds(ids);
    const byId = new Map(found.map((user) => [user.id, user]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  list(first: number, afterId?: string): Promise<UserPage> {
    return this.store.list({ first, ...(afterId ? { afterId } : {}) });
  }

  count(): Promise<number> {
    return this.store.count();
  }

  async update(id: string, patch: UpdateUserInput): Promise<UserRecord> {
    const changedFields = Object.entries(patch)
      .filter(([, value]) => value !== undefined)
      .map(([key]) => key);
    const updated = await this.store.update(id, patch, new Date(), (user) =>
      updatedEvent(user, changedFields),
    );
    if (!updated) throw notFound('No user with this id', { field: 'id' });
    this.onEventWritten();
    return updated;
  }

  /**
   * Follows an email change made in auth (which owns emails and verified the new address): idempotent by event
   * id. The profile's `aiva.users.user.updated.v1` (changedFields `email`) goes out like any other change.
   */
  async syncEmail(
    consumer: string,
    event: { id: string; data: { id: string; email: string; changedAt: string } },
  ): Promise<'updated' | 'unchanged' | 'missing' | 'duplicate'> {
    const result = await this.store.syncEmail(
      { consumer, eventId: event.id, userId: event.data.id, email: event.data.email, at: new Date() },
      (user) => updatedEvent(user, ['email']),
    );
    if (result === 'updated') this.onEventWritten();
    return result;
  }

  async delete(id: string): Promise<true> {
    const removed = await this.store.remove(id, (user) =>
      createEvent('aiva.users.user.deleted.v1', EVENT_SOURCE, {
        id: user.id,
        deletedAt: new Date().toISOString(),
      }),
    );
    if (!removed) throw notFound('No user with this id', { field: 'id' });
    this.onEventWritten();
    return true;
  }
}

function profile(user: UserRecord) {
  return {
    id: user.id,
    email: user.email,
    username: user.username,
    firstName: user.firstName,
    lastName: user.lastName,
    displayName: user.displayName,
  };
}

function createdEvent(user: UserRecord): AivaEvent {
  return createEvent('aiva.users.user.created.v1', EVENT_SOURCE, {
    ...profile(user),
    createdAt: user.createdAt.toISOString(),
  });
}

function updatedEvent(user: UserRecord, changedFields: string[]): AivaEvent {
  return createEvent('aiva.users.user.updated.v1', EVENT_SOURCE, {
    ...profile(user),
    updatedAt: user.updatedAt.toISOString(),
    changedFields,
  });
}
