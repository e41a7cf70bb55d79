import { type Logger, type SessionRevocations, unauthenticated, uuidv7 } from '@aiva/shared';
import { formatRefreshToken, hashSecret, parseRefreshToken, randomSecret, sameHash } from './secret-token.js';
import type { KeyRing } from './signing-keys.js';
import type { AccountRecord } from './store/account.store.js';
import type { SessionRecord, SessionStore } from './store/session.store.js';

export interface IssuedTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  userId: string;
}

export interface ClientInfo {
  ip: string | null;
  userAgent: string | null;
}

const INVALID_REFRESH = 'Invalid or expired refresh token';

/**
 * Session rules: a session is one refresh-token family. Access tokens are short JWTs; refresh tokens are opaque,
 * stored only hashed, rotated on every use; reuse of a rotated token revokes the family (RFC 9700 §4.14.2).
 */
export class SessionService {
  constructor(
    private readonly sessions: SessionStore,
    private readonly keys: KeyRing,
    private readonly options: {
      refreshTtlDays: number;
      logger: Logger;
      now?: () => Date;
      /**
       * Where ended sessions are marked, so the gateway refuses their access tokens before they expire; with
       * `revocationTtlSeconds`, the longest an access token can still be accepted (its lifetime and clock skew).
       */
      revocations?: SessionRevocations;
      revocationTtlSeconds?: number;
      /**
       * Active sessions a person may have; starting one more ends the oldest (reason `session_limit`, marked
       * revoked like a sign-out). Unset: no cap.
       */
      maxSessionsPerUser?: number;
    },
  ) {}

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /** Starts a session for an account that just proved who it is. */
  async start(account: AccountRecord, client: ClientInfo): Promise<IssuedTokens> {
    const now = this.now();
    const secret = randomSecret();
    const session: SessionRecord = {
      id: uuidv7(now.getTime()),
      userId: account.id,
      tokenHash: hashSecret(secret),
      previousHashes: [],
      createdAt: now,
      lastUsedAt: now,
      expiresAt: new Date(now.getTime() + this.options.refreshTtlDays * 86_400_000),
      revokedAt: null,
      revokedReason: null,
      userAgent: client.userAgent?.slice(0, 256) ?? null,
      ip: client.ip,
    };
    await this.sessions.create(session);
    await this.enforceCap(account.id, session.id);
    return this.tokensFor(account, session.id, secret);
  }

  /**
   * Ends the oldest active sessions beyond the cap, never the one just started. Sessions started at the same time
   * each run this after their own create, so the cap holds once they are all stored.
   */
  private async enforceCap(userId: string, keepSessionId: string): Promise<void> {
    const max = this.options.maxSessionsPerUser;
    if (!max) return;
    const now = this.now();
    const active = await this.sessions.listActiveForUser(userId, now); // newest first
    if (active.length <= max) return;
    const kept = new Set(active.slice(0, max).map((s) => s.id));
    kept.add(keepSessionId);
    const excess = active.filter((s) => !kept.has(s.id));
    const ended: string[] = [];
    for (const session of excess) {
      if (await this.sessions.revoke(session.id, 'session_limit', now)) ended.push(session.id);
    }
    await this.markRevoked(ended);
  }

  /**
   * Exchanges a refresh token for new tokens, rotating the secret. `accountOf` reloads the account so new access
   * tokens carry current roles (and a deleted account cannot refresh).
   */
  async refresh(
    refreshToken: string,
    accountOf: (id: string) => Promise<AccountRecord | null>,
  ): Promise<IssuedTokens> {
    const parsed = parseRefreshToken(refreshToken);
    if (!parsed) throw unauthenticated(INVALID_REFRESH);
    const now = this.now();
    const session = await this.sessions.get(parsed.sessionId);
    if (!session || session.revokedAt || session.expiresAt <= now) throw unauthenticated(INVALID_REFRESH);
    const presented = hashSecret(parsed.secret);
    if (!sameHash(presented, session.tokenHash)) {
      if (session.previousHashes.some((old) => sameHash(old, presented))) await this.revokeForReuse(session);
      throw unauthenticated(INVALID_REFRESH);
    }
    const account = await accountOf(session.userId);
    if (!account) {
      await this.sessions.revoke(session.id, 'account_removed', now);
      await this.markRevoked([session.id]);
      throw unauthenticated(INVALID_REFRESH);
    }
    const secret = randomSecret();
    const rotated = await this.sessions.rotate(session.id, presented, hashSecret(secret), now);
    // Losing the compare-and-set means the same token was used twice at once: that is reuse too.
    if (!rotated) {
      await this.revokeForReuse(session);
      throw unauthenticated(INVALID_REFRESH);
    }
    return this.tokensFor(account, session.id, secret);
  }

  /** Ends the session a refresh token belongs to, when the token is its current one. */
  async endByRefreshToken(refreshToken: string): Promise<boolean> {
    const parsed = parseRefreshToken(refreshToken);
    if (!parsed) throw unauthenticated(INVALID_REFRESH);
    const session = await this.sessions.get(parsed.sessionId);
    if (!session || !sameHash(hashSecret(parsed.secret), session.tokenHash))
      throw unauthenticated(INVALID_REFRESH);
    const ended = await this.sessions.revoke(session.id, 'signed_out', this.now());
    await this.markRevoked([session.id]);
    return ended;
  }

  /** Ends one of the user's own sessions. */
  async end(userId: string, sessionId: string): Promise<boolean> {
    const session = await this.sessions.get(sessionId);
    if (!session || session.userId !== userId) return false;
    const ended = await this.sessions.revoke(sessionId, 'signed_out', this.now());
    await this.markRevoked([sessionId]);
    return ended;
  }

  async endAll(userId: string, reason: string, exceptSessionId?: string): Promise<number> {
    const now = this.now();
    const active = await this.sessions.listActiveForUser(userId, now);
    const ended = await this.sessions.revokeAllForUser(userId, reason, now, exceptSessionId);
    await this.markRevoked(active.map((s) => s.id).filter((id) => id !== exceptSessionId));
    return ended;
  }

  listActive(userId: string): Promise<SessionRecord[]> {
    return this.sessions.listActiveForUser(userId, this.now());
  }

  private async revokeForReuse(session: SessionRecord): Promise<void> {
    this.options.logger.warn(
      { sessionId: session.id, userId: session.userId },
      'refresh token reuse: session revoked',
    );
    await this.sessions.revoke(session.id, 'refresh_token_reuse', this.now());
    await this.markRevoked([session.id]);
  }

  /** Marks ended sessions for the gateway; a cache failure is logged, never fails the sign-out itself. */
  private async markRevoked(sessionIds: string[]): Promise<void> {
    const { revocations, revocationTtlSeconds } = this.options;
    if (!revocations || !revocationTtlSeconds || sessionIds.length === 0) return;
    try {
      await revocations.revoke(sessionIds, revocationTtlSeconds);
    } catch (error) {
      this.options.logger.error(
        { err: (error as Error).message, sessions: sessionIds.length },
        'could not mark ended sessions as revoked: their access tokens stay valid until they expire',
      );
    }
  }

  private async tokensFor(account: AccountRecord, sessionId: string, secret: string): Promise<IssuedTokens> {
    const { token, expiresIn } = await this.keys.sign({
      sub: account.id,
      sid: sessionId,
      roles: account.roles,
    });
    return {
      accessToken: token,
      refreshToken: formatRefreshToken(sessionId, secret),
      expiresIn,
      userId: account.id,
    };
  }
}
