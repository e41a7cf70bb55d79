import type { AivaEvent, OutboxStore } from '@aiva/shared';

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

export type OneTimeTokenPurpose = 'password_reset' | 'email_verification';

/** A single-use token (password reset, email verification): only its SHA-256 hash is stored. */
export interface OneTimeTokenRecord {
  hash: string;
  purpose: OneTimeTokenPurpose;
  accountId: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
}

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
  insertToken(token: OneTimeTokenRecord, events: readonly AivaEvent[]): Promise<void>;
  /**
   * Atomically marks the token used when it exists for `purpose`, is unused and `expiresAt > now`; returns the
   * record as it was before, else null (unknown, used, expired or other purpose: nothing changes).
   */
  consumeToken(hash: string, purpose: OneTimeTokenPurpose, now: Date): Promise<OneTimeTokenRecord | null>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
