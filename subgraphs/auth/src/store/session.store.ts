/**
 * A sign-in session: one refresh-token family. The refresh token the client holds is
 * `<session id>.<secret>`; only SHA-256 hashes of secrets are stored. Every refresh rotates the secret;
 * presenting an earlier secret of the family again is reuse, and revokes the whole session (RFC 9700 §4.14.2).
 */
export interface SessionRecord {
  id: string;
  userId: string;
  /** Hash of the current (only valid) refresh secret. */
  tokenHash: string;
  /** Hashes of secrets already rotated away (newest last, bounded): presenting one again is reuse. */
  previousHashes: string[];
  createdAt: Date;
  lastUsedAt: Date;
  /** The refresh token's absolute expiry; the session is gone after it. */
  expiresAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
  userAgent: string | null;
  ip: string | null;
}

/** How many rotated-away hashes a session remembers for reuse detection. */
export const MAX_PREVIOUS_HASHES = 100;

/**
 * The session port. Adapters: Redis (`REDIS_URL`) and SQLite (embedded default, survives restarts).
 * Expired sessions may be dropped by the adapter at any time after `expiresAt`.
 */
export interface SessionStore {
  readonly kind: 'sqlite' | 'redis';
  create(session: SessionRecord): Promise<void>;
  get(id: string): Promise<SessionRecord | null>;
  /**
   * Compare-and-set rotation: when the session exists, is not revoked, and its `tokenHash` equals
   * `expectedHash`, sets `tokenHash = nextHash`, appends the old hash to `previousHashes` (bounded by
   * MAX_PREVIOUS_HASHES), sets `lastUsedAt = now`, and returns the updated record. Otherwise null, nothing changes
   * (a concurrent refresh that lost the race gets null).
   */
  rotate(id: string, expectedHash: string, nextHash: string, now: Date): Promise<SessionRecord | null>;
  /** Revokes one session; false when unknown or already revoked. */
  revoke(id: string, reason: string, now: Date): Promise<boolean>;
  /** Revokes every active session of the user except `exceptSessionId`; returns how many. */
  revokeAllForUser(userId: string, reason: string, now: Date, exceptSessionId?: string): Promise<number>;
  /** Not revoked and `expiresAt > now`, newest first. */
  listActiveForUser(userId: string, now: Date): Promise<SessionRecord[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
