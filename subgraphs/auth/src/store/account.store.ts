import type { AivaEvent, OutboxStore, RecordFields } from '@aiva/shared';

/** Credentials and identity facts of one person. The profile (names, username) lives in users. */
export interface AccountRecord {
  /** The shared `User` key, made by users' createUser. */
  id: string;
  /** Stored lower-cased; unique. */
  email: string;
  /** argon2id PHC string. */
  passwordHash: string;
  emailVerified: boolean;
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
  passwordChangedAt: Date;
}

/** How each field of an account is stored, for both adapters (`sqliteTable`, `mongoCollection`). */
export const ACCOUNT_FIELDS: RecordFields<AccountRecord> = {
  id: 'string',
  email: 'string',
  passwordHash: 'string',
  emailVerified: 'boolean',
  roles: 'list',
  createdAt: 'date',
  updatedAt: 'date',
  passwordChangedAt: 'date',
};

export type OneTimeTokenPurpose = 'password_reset' | 'email_verification' | 'email_change';
export const ONE_TIME_TOKEN_PURPOSES: readonly OneTimeTokenPurpose[] = [
  'password_reset',
  'email_verification',
  'email_change',
];

/** A single-use token (password reset, email verification, email change): only its SHA-256 hash is stored. */
export interface OneTimeTokenRecord {
  hash: string;
  purpose: OneTimeTokenPurpose;
  accountId: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  /** `email_change` only: the new address (lower-cased) the token confirms. Absent for other purposes. */
  newEmail?: string;
}

/** How each field of a one-time token is stored (key: `hash`). */
export const TOKEN_FIELDS: RecordFields<OneTimeTokenRecord> = {
  hash: 'string',
  purpose: 'string',
  accountId: 'string',
  createdAt: 'date',
  expiresAt: 'date',
  usedAt: 'date?',
  newEmail: 'optional',
};

/**
 * The durable undo of a half-done sign-up: users created the profile, storing the account failed, and the profile
 * must go. Kept until users confirmed the removal; retried with backoff.
 */
export interface PendingProfileRemoval {
  userId: string;
  createdAt: Date;
  /** Failed attempts so far. */
  attempts: number;
  nextAttemptAt: Date;
  /** The last failure's message (no secrets: users' error message or "unavailable"). */
  lastError: string | null;
}

/** How each field of a pending profile removal is stored (key: `userId`). */
export const PROFILE_REMOVAL_FIELDS: RecordFields<PendingProfileRemoval> = {
  userId: 'string',
  createdAt: 'date',
  attempts: 'number',
  nextAttemptAt: 'date',
  lastError: 'value',
};

/**
 * The persistence port of auth's accounts and one-time tokens. Writes that carry events store them in the
 * outbox in the same transaction. A duplicate email throws `conflict(..., { field: 'email' })` and writes
 * nothing.
 */
export interface AccountStore extends OutboxStore {
  readonly kind: 'sqlite' | 'mongo';
  insert(account: AccountRecord, events: readonly AivaEvent[]): Promise<void>;
  findById(id: string): Promise<AccountRecord | null>;
  /** One query; unknown ids absent. */
  findByIds(ids: readonly string[]): Promise<AccountRecord[]>;
  /** Case-insensitive. */
  findByEmail(email: string): Promise<AccountRecord | null>;
  /** False for an unknown id. */
  updatePassword(id: string, passwordHash: string, changedAt: Date): Promise<boolean>;
  /** False for an unknown id. */
  setEmailVerified(id: string, at: Date): Promise<boolean>;
  /** False for an unknown id. */
  setRoles(id: string, roles: readonly string[], at: Date): Promise<boolean>;
  /** Removes the account and its tokens; false for an unknown id. */
  remove(id: string): Promise<boolean>;
  /**
   * Removes the account and its tokens for an event (a profile deleted in users), idempotently by event: when
   * `consumer` already processed `eventId` nothing happens (`duplicate`); else the account goes (`removed`, or
   * `missing` when there is none) and the event id is recorded, in the same transaction as the removal.
   */
  removeForEvent(consumer: string, eventId: string, id: string): Promise<'removed' | 'missing' | 'duplicate'>;
  /** Whether `consumer` processed `eventId` (`removeForEvent`), within the retention (30 days). */
  hasProcessed(consumer: string, eventId: string): Promise<boolean>;
  insertToken(token: OneTimeTokenRecord, events: readonly AivaEvent[]): Promise<void>;
  /**
   * Atomically marks the token used when it exists for `purpose`, is unused and `expiresAt > now`; returns the
   * record as it was before, else null (unknown, used, expired or other purpose: nothing changes).
   */
  consumeToken(hash: string, purpose: OneTimeTokenPurpose, now: Date): Promise<OneTimeTokenRecord | null>;
  /**
   * Marks every unused token of the account with one of `purposes` used at `now`, so none of them can be consumed
   * any more (a password reset ends the other reset links). Returns how many.
   */
  invalidateTokens(accountId: string, purposes: readonly OneTimeTokenPurpose[], now: Date): Promise<number>;
  /**
   * Sets the account's email (stored lower-cased) and marks it verified, with its events, in one transaction.
   * A taken email (any case) throws `conflict(..., { field: 'email' })` and writes nothing; false for an unknown id.
   */
  changeEmail(id: string, email: string, at: Date, events: readonly AivaEvent[]): Promise<boolean>;
  /**
   * Records a profile to remove, first due at `nextAttemptAt` (default `at`). Idempotent: an existing entry is
   * kept as it is.
   */
  addProfileRemoval(userId: string, at: Date, nextAttemptAt?: Date): Promise<void>;
  /**
   * Up to `limit` entries due at `now` (`nextAttemptAt <= now`), oldest first, each leased until `leaseUntil`
   * (its `nextAttemptAt` moves there), so concurrent retriers do not take the same entry.
   */
  claimProfileRemovals(now: Date, leaseUntil: Date, limit: number): Promise<PendingProfileRemoval[]>;
  /** Counts a failed attempt and schedules the next; nothing for an unknown entry. */
  failProfileRemoval(userId: string, nextAttemptAt: Date, error: string): Promise<void>;
  /** The removal is done: the entry goes. */
  completeProfileRemoval(userId: string): Promise<void>;
  /** Every pending entry, oldest first (operations and tests). */
  pendingProfileRemovals(): Promise<PendingProfileRemoval[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
