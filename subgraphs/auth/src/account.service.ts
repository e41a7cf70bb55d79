import {
  AivaError,
  type AivaEvent,
  badUserInput,
  conflict,
  createEvent,
  type Logger,
  ROLE_ADMIN,
  ROLE_USER,
  type SealingKeys,
  seal,
  unauthenticated,
} from '@aiva/shared';
import type { SignInInput, SignUpInput } from './auth.input.js';
import { burnPasswordCheck, checkPasswordPolicy, hashPassword, verifyPassword } from './password.js';
import type { ProfileClient } from './profile.client.js';
import type { ProfileRemovals } from './profile-removals.js';
import type { RequestBudgets } from './request-budgets.js';
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
  /** Default 24. */
  emailChangeTtlHours?: number;
  /** Seals the single-use tokens of the events (only the mail sender opens them). */
  sealing: SealingKeys;
  logger: Logger;
  /** Called after each write that stored an event, so the outbox relay publishes soon. */
  onEventWritten?: () => void;
}

/** What AccountService needs besides its store and sessions. */
export interface AccountServiceDeps {
  profiles: ProfileClient;
  limiter: SignInLimiter;
  budgets: RequestBudgets;
  /** The durable undo of half-done sign-ups. */
  profileRemovals: ProfileRemovals;
}

/**
 * Account rules: sign-up, sign-in, passwords, email verification and change. Knows nothing of HTTP or GraphQL.
 * Abuse-prone requests take their budget first (RequestBudgets); single-use tokens are stored hashed and published
 * sealed, never in plaintext.
 */
export class AccountService {
  private readonly adminEmails: Set<string>;
  private readonly profiles: ProfileClient;
  private readonly limiter: SignInLimiter;
  private readonly budgets: RequestBudgets;
  private readonly profileRemovals: ProfileRemovals;

  constructor(
    private readonly accounts: AccountStore,
    private readonly sessions: SessionService,
    deps: AccountServiceDeps,
    private readonly options: AccountServiceOptions,
  ) {
    this.adminEmails = new Set(options.adminEmails.map((e) => e.trim().toLowerCase()));
    this.profiles = deps.profiles;
    this.limiter = deps.limiter;
    this.budgets = deps.budgets;
    this.profileRemovals = deps.profileRemovals;
  }

  /**
   * Creates the profile in users (synchronously, calling users directly), then the account with its event, then
   * a session. The profile exists before signUp returns, so `me` answers at once, whatever the event bus does.
   * If storing the account fails, the profile's removal is recorded and retried until users confirms it.
   * Everyone starts as a plain user: an email listed in AIVA_ADMIN_EMAILS becomes admin once verified.
   */
  async signUp(input: SignUpInput, client: ClientInfo): Promise<IssuedTokens> {
    await this.budgets.take('sign_up', { email: input.email, ip: client.ip });
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
      roles: [ROLE_USER],
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
      await this.profileRemovals.enqueue(id);
      throw error;
    }
    this.options.onEventWritten?.();
    return this.sessions.start(account, client);
  }

  /**
   * Same answer and the same argon2 work whether the email is unknown or the password wrong. The attempt is
   * reserved (counted) before the password is checked, and given back when it succeeds.
   */
  async signIn(input: SignInInput, client: ClientInfo): Promise<IssuedTokens> {
    const attempt = await this.limiter.reserve(input.email, client.ip);
    const account = await this.accounts.findByEmail(input.email);
    const valid = account
      ? await verifyPassword(account.passwordHash, input.password)
      : await burnPasswordCheck(input.password);
    if (!account || !valid) throw unauthenticated(WRONG_CREDENTIALS);
    await attempt.refund();
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

  /**
   * Always resolves (no account enumeration); an account gets a single-use token by event. Counted against the
   * budgets of the email (known or not; none for a malformed one) and of the client address first.
   */
  async requestPasswordReset(email: string | null, client: ClientInfo): Promise<true> {
    await this.budgets.take('password_reset', { email, ip: client.ip });
    if (!email) return true;
    const account = await this.accounts.findByEmail(email);
    if (account)
      await this.issueToken(account, 'password_reset', this.options.passwordResetTtlMinutes * 60_000);
    return true;
  }

  /**
   * Consumes the token, sets the password, marks the email verified (the mail reached its owner, which may make a
   * listed address admin), ends the account's other reset links and all its sessions.
   */
  async resetPassword(token: string, newPassword: string): Promise<true> {
    checkPasswordPolicy(newPassword, undefined, 'newPassword');
    const record = await this.accounts.consumeToken(hashSecret(token), 'password_reset', new Date());
    const account = record ? await this.accounts.findById(record.accountId) : null;
    if (!record || !account) throw badUserInput(INVALID_TOKEN, { field: 'token' });
    checkPasswordPolicy(newPassword, account.email, 'newPassword');
    const now = new Date();
    await this.accounts.updatePassword(account.id, await hashPassword(newPassword), now);
    await this.accounts.invalidateTokens(account.id, ['password_reset'], now);
    if (!account.emailVerified) await this.accounts.setEmailVerified(account.id, now);
    await this.grantBootstrapAdmin(account, account.email, now);
    await this.sessions.endAll(account.id, 'password_reset');
    return true;
  }

  async requestEmailVerification(userId: string, client: ClientInfo): Promise<true> {
    const account = await this.requireAccount(userId);
    await this.budgets.take('email_verification', { email: account.email, ip: client.ip, userId });
    if (!account.emailVerified) {
      await this.issueToken(
        account,
        'email_verification',
        this.options.emailVerificationTtlHours * 3_600_000,
      );
    }
    return true;
  }

  /** Marks the email verified; a listed address becomes admin (AIVA_ADMIN_EMAILS). */
  async verifyEmail(token: string): Promise<true> {
    const now = new Date();
    const record = await this.accounts.consumeToken(hashSecret(token), 'email_verification', now);
    const account = record ? await this.accounts.findById(record.accountId) : null;
    if (!record || !account || !(await this.accounts.setEmailVerified(account.id, now))) {
      throw badUserInput(INVALID_TOKEN, { field: 'token' });
    }
    await this.accounts.invalidateTokens(account.id, ['email_verification'], now);
    await this.grantBootstrapAdmin(account, account.email, now);
    return true;
  }

  /**
   * Sends a single-use token to the new address (by event, sealed). Answers the same whether or not the address
   * is taken: only confirming tells (CONFLICT), and only to whoever holds the mail of that address. Counted per
   * new address, per account and per client address.
   */
  async requestEmailChange(
    userId: string,
    newEmail: string,
    currentPassword: string,
    client: ClientInfo,
  ): Promise<true> {
    const account = await this.requireAccount(userId);
    await this.budgets.take('email_change', { email: newEmail, ip: client.ip, userId });
    // A session alone (a stolen token) must not move the address a password reset would go to.
    if (!(await verifyPassword(account.passwordHash, currentPassword))) {
      throw badUserInput('The current password is incorrect', { field: 'currentPassword' });
    }
    if (newEmail.toLowerCase() === account.email.toLowerCase()) {
      throw badUserInput('This already is the email of the account', { field: 'newEmail' });
    }
    await this.issueToken(
      account,
      'email_change',
      (this.options.emailChangeTtlHours ?? 24) * 3_600_000,
      newEmail,
    );
    return true;
  }

  /**
   * Consumes an email-change token: the account's email becomes the new (now verified) address, and
   * `aiva.auth.user.email_changed.v1` tells users, whose profile follows. CONFLICT when another account has taken
   * the address meanwhile. The account's other outstanding links (reset, verification, other changes) end: they
   * went to an address that is no longer the account's. Sessions stay (nothing in an access token names the email).
   */
  async confirmEmailChange(token: string): Promise<true> {
    const now = new Date();
    const record = await this.accounts.consumeToken(hashSecret(token), 'email_change', now);
    const account = record ? await this.accounts.findById(record.accountId) : null;
    if (!record?.newEmail || !account) throw badUserInput(INVALID_TOKEN, { field: 'token' });
    const event = createEvent('aiva.auth.user.email_changed.v1', EVENT_SOURCE, {
      id: account.id,
      email: record.newEmail,
      previousEmail: account.email,
      changedAt: now.toISOString(),
    });
    if (!(await this.accounts.changeEmail(account.id, record.newEmail, now, [event]))) {
      throw badUserInput(INVALID_TOKEN, { field: 'token' });
    }
    this.options.onEventWritten?.();
    await this.accounts.invalidateTokens(
      account.id,
      ['password_reset', 'email_verification', 'email_change'],
      now,
    );
    await this.grantBootstrapAdmin(account, record.newEmail, now);
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

  /**
   * `removeAccount` for the event `eventId` of the durable consumer `consumer`, once: a redelivery of an event
   * already processed (however late: the ids are kept 30 days) does nothing. The sessions (possibly in Redis,
   * outside the account store's transaction) end first, idempotently; then the account goes and the event id is
   * recorded in one transaction of the account store. A failure in between redelivers the event, which ends the
   * (already ended) sessions again and removes the account then.
   */
  async removeAccountOnce(consumer: string, eventId: string, userId: string): Promise<void> {
    if (await this.accounts.hasProcessed(consumer, eventId)) return;
    const ended = await this.sessions.endAll(userId, 'account_removed');
    const outcome = await this.accounts.removeForEvent(consumer, eventId, userId);
    if (outcome === 'removed' || (outcome === 'missing' && ended > 0)) {
      this.options.logger.info({ userId, sessionsEnded: ended }, 'account removed with its profile');
    }
  }

  /** Admin bootstrap: a listed email gets `admin` once its owner proved it reads that address. */
  private async grantBootstrapAdmin(account: AccountRecord, verifiedEmail: string, at: Date): Promise<void> {
    if (!this.adminEmails.has(verifiedEmail.toLowerCase()) || account.roles.includes(ROLE_ADMIN)) return;
    await this.accounts.setRoles(account.id, [...account.roles, ROLE_ADMIN], at);
    this.options.logger.info({ userId: account.id }, 'admin role granted to a verified bootstrap email');
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
    newEmail?: string,
  ): Promise<void> {
    const token = randomSecret();
    const now = new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    const sealedToken = seal(token, this.options.sealing);
    const base = { userId: account.id, token: sealedToken, expiresAt: expiresAt.toISOString() };
    let event: AivaEvent;
    if (purpose === 'email_change' && newEmail) {
      event = createEvent('aiva.auth.email_change.requested.v1', EVENT_SOURCE, {
        ...base,
        email: newEmail,
        previousEmail: account.email,
      });
    } else if (purpose === 'password_reset') {
      event = createEvent('aiva.auth.password_reset.requested.v1', EVENT_SOURCE, {
        ...base,
        email: account.email,
      });
    } else {
      event = createEvent('aiva.auth.email_verification.requested.v1', EVENT_SOURCE, {
        ...base,
        email: account.email,
      });
    }
    await this.accounts.insertToken(
      {
        hash: hashSecret(token),
        purpose,
        accountId: account.id,
        createdAt: now,
        expiresAt,
        usedAt: null,
        ...(newEmail ? { newEmail: newEmail.toLowerCase() } : {}),
      },
      [event],
    );
    this.options.onEventWritten?.();
  }
}
