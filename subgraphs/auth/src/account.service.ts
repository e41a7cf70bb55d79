import {
  AivaError,
  badUserInput,
  conflict,
  createEvent,
  type Logger,
  ROLE_ADMIN,
  ROLE_USER,
  unauthenticated,
} from '@aiva/shared';
import type { SignInInput, SignUpInput } from './auth.input.js';
import { burnPasswordCheck, checkPasswordPolicy, hashPassword, verifyPassword } from './password.js';
import type { ProfileClient } from './profile.client.js';
import { hashSecret, randomSecret } from './secret-token.js';
import type { ClientInfo, IssuedTokens, SessionService } from './session.service.js';
import type { SignInLimiter } from './sign-in-limiter.js';
import type { AccountRecord, AccountStore, OneTimeTokenPurpose } from './store/account.store.js';

export const EVENT_SOURCE = 'auth';
const WRONG_CREDENTIALS = 'Email or password is incorrect';
const INVALID_TOKEN = 'This link is invalid or has expired';

export interface AccountServiceOptions {
  adminEmails: readonly string[];
  passwordResetTtlMinutes: number;
  emailVerificationTtlHours: number;
  logger: Logger;
  /** Called after each write that stored an event, so the outbox relay publishes soon. */
  onEventWritten?: () => void;
}

/** Account rules: sign-up, sign-in, passwords, email verification. Knows nothing of HTTP or GraphQL. */
export class AccountService {
  private readonly adminEmails: Set<string>;

  constructor(
    private readonly accounts: AccountStore,
    private readonly sessions: SessionService,
    private readonly profiles: ProfileClient,
    private readonly limiter: SignInLimiter,
    private readonly options: AccountServiceOptions,
  ) {
    this.adminEmails = new Set(options.adminEmails.map((e) => e.trim().toLowerCase()));
  }

  /**
   * Creates the profile in users (synchronously, calling users directly), then the account with its event, then
   * a session. The profile exists before signUp returns, so `me` answers at once, whatever the event bus does.
   * If storing the account fails, the profile is removed again.
   */
  async signUp(input: SignUpInput, client: ClientInfo): Promise<IssuedTokens> {
    checkPasswordPolicy(input.password, input.email);
    if (await this.accounts.findByEmail(input.email)) {
      throw conflict('An account with this email already exists', { field: 'email' });
    }
    const passwordHash = await hashPassword(input.password);
    const { password: _password, ...profile } = input;
    const { id } = await this.profiles.create(profile);
    const now = new Date();
    const account: AccountRecord = {
      id,
      email: input.email,
      passwordHash,
      emailVerified: false,
      roles: this.adminEmails.has(input.email) ? [ROLE_USER, ROLE_ADMIN] : [ROLE_USER],
      createdAt: now,
      updatedAt: now,
      passwordChangedAt: now,
    };
    try {
      await this.accounts.insert(account, [
        createEvent('aiva.auth.user.registered.v1', EVENT_SOURCE, {
          id,
          email: account.email,
          registeredAt: now.toISOString(),
        }),
      ]);
    } catch (error) {
      await this.profiles.remove(id).catch((cleanup: unknown) => {
        this.options.logger.error(
          { err: cleanup, userId: id },
          'sign-up failed and its profile could not be removed',
        );
      });
      throw error;
    }
    this.options.onEventWritten?.();
    return this.sessions.start(account, client);
  }

  /** Same answer and the same argon2 work whether the email is unknown or the password wrong. */
  async signIn(input: SignInInput, client: ClientInfo): Promise<IssuedTokens> {
    await this.limiter.assertAllowed(input.email, client.ip);
    const account = await this.accounts.findByEmail(input.email);
    const valid = account
      ? await verifyPassword(account.passwordHash, input.password)
      : await burnPasswordCheck(input.password);
    if (!account || !valid) {
      await this.limiter.recordFailure(input.email, client.ip);
      throw unauthenticated(WRONG_CREDENTIALS);
    }
    await this.limiter.recordSuccess(input.email);
    return this.sessions.start(account, client);
  }

  findByIds(ids: readonly string[]): Promise<AccountRecord[]> {
    return this.accounts.findByIds(ids);
  }

  findById(id: string): Promise<AccountRecord | null> {
    return this.accounts.findById(id);
  }

  /** Checks the current password, sets the new one, and ends every other session. */
  async changePassword(
    userId: string,
    sessionId: string,
    currentPassword: string,
    newPassword: string,
  ): Promise<true> {
    const account = await this.requireAccount(userId);
    if (!(await verifyPassword(account.passwordHash, currentPassword))) {
      throw badUserInput('The current password is incorrect', { field: 'currentPassword' });
    }
    checkPasswordPolicy(newPassword, account.email, 'newPassword');
    await this.accounts.updatePassword(userId, await hashPassword(newPassword), new Date());
    await this.sessions.endAll(userId, 'password_changed', sessionId);
    return true;
  }

  /** Always resolves (no account enumeration); an account gets a single-use token by event. */
  async requestPasswordReset(email: string): Promise<true> {
    const account = await this.accounts.findByEmail(email);
    if (account)
      await this.issueToken(account, 'password_reset', this.options.passwordResetTtlMinutes * 60_000);
    return true;
  }

  /** Consumes the token, sets the password, marks the email verified (the mail reached its owner), ends all sessions. */
  async resetPassword(token: string, newPassword: string): Promise<true> {
    checkPasswordPolicy(newPassword, undefined, 'newPassword');
    const record = await this.accounts.consumeToken(hashSecret(token), 'password_reset', new Date());
    const account = record ? await this.accounts.findById(record.accountId) : null;
    if (!record || !account) throw badUserInput(INVALID_TOKEN, { field: 'token' });
    checkPasswordPolicy(newPassword, account.email, 'newPassword');
    const now = new Date();
    await this.accounts.updatePassword(account.id, await hashPassword(newPassword), now);
    if (!account.emailVerified) await this.accounts.setEmailVerified(account.id, now);
    await this.sessions.endAll(account.id, 'password_reset');
    return true;
  }

  async requestEmailVerification(userId: string): Promise<true> {
    const account = await this.requireAccount(userId);
    if (!account.emailVerified) {
      await this.issueToken(
        account,
        'email_verification',
        this.options.emailVerificationTtlHours * 3_600_000,
      );
    }
    return true;
  }

  async verifyEmail(token: string): Promise<true> {
    const record = await this.accounts.consumeToken(hashSecret(token), 'email_verification', new Date());
    if (!record || !(await this.accounts.setEmailVerified(record.accountId, new Date()))) {
      throw badUserInput(INVALID_TOKEN, { field: 'token' });
    }
    return true;
  }

  /**
   * Removes the account of a deleted profile: every session ends, then the account and its tokens go.
   * Idempotent (an event delivered twice, or an account that never existed, changes nothing more).
   */
  async removeAccount(userId: string): Promise<void> {
    const ended = await this.sessions.endAll(userId, 'account_removed');
    const removed = await this.accounts.remove(userId);
    if (removed || ended > 0) {
      this.options.logger.info({ userId, sessionsEnded: ended }, 'account removed with its profile');
    }
  }

  private async requireAccount(userId: string): Promise<AccountRecord> {
    const account = await this.accounts.findById(userId);
    if (!account) throw new AivaError('NOT_FOUND', 'No account for this user', { field: 'id' });
    return account;
  }

  private async issueToken(
    account: AccountRecord,
    purpose: OneTimeTokenPurpose,
    ttlMs: number,
  ): Promise<void> {
    const token = randomSecret();
    const now = new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    const data = { userId: account.id, email: account.email, token, expiresAt: expiresAt.toISOString() };
    const event =
      purpose === 'password_reset'
        ? createEvent('aiva.auth.password_reset.requested.v1', EVENT_SOURCE, data)
        : createEvent('aiva.auth.email_verification.requested.v1', EVENT_SOURCE, data);
    await this.accounts.insertToken(
      { hash: hashSecret(token), purpose, accountId: account.id, createdAt: now, expiresAt, usedAt: null },
      [event],
    );
    this.options.onEventWritten?.();
  }
}
