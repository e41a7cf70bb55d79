import {
  parseInput,
  type RequestContext,
  requireSelfOrAdmin,
  requireUser,
  type ViewerContext,
} from '@aiva/shared';
import DataLoader from 'dataloader';
import { z } from 'zod';
import type { AccountService } from './account.service.js';
import {
  changePasswordInput,
  emailInput,
  requestEmailChangeInput,
  resetPasswordInput,
  signInInput,
  signUpInput,
  tokenInput,
} from './auth.input.js';
import type { ClientInfo, IssuedTokens, SessionService } from './session.service.js';
import type { AccountRecord } from './store/account.store.js';
import type { SessionRecord } from './store/session.store.js';

export interface AuthContext extends RequestContext, ViewerContext {
  accountLoader: DataLoader<string, AccountRecord | null>;
  client: ClientInfo;
}

/** A `User` as auth resolves it: the key, plus the account when there is one. */
interface UserRef {
  id: string;
}

export function createAccountLoader(accounts: AccountService) {
  return new DataLoader<string, AccountRecord | null>(async (ids) => {
    const found = new Map((await accounts.findByIds(ids)).map((a) => [a.id, a]));
    return ids.map((id) => found.get(id) ?? null);
  });
}

function payload(tokens: IssuedTokens) {
  return { ...tokens, user: { id: tokens.userId } };
}

function sessionView(session: SessionRecord, currentSessionId: string | undefined) {
  return {
    id: session.id,
    createdAt: session.createdAt.toISOString(),
    lastUsedAt: session.lastUsedAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
    userAgent: session.userAgent,
    ip: session.ip,
    current: session.id === currentSessionId,
  };
}

/** Thin: parse input → call the service → map the result. */
export function createResolvers(accounts: AccountService, sessions: SessionService) {
  /** The account behind a User the caller may see (self or admin); FORBIDDEN otherwise. */
  const accountFor = async (user: UserRef, ctx: AuthContext) => {
    requireSelfOrAdmin(ctx, user.id);
    return ctx.accountLoader.load(user.id);
  };
  return {
    Query: {
      me: (_: unknown, __: unknown, ctx: AuthContext): UserRef | null =>
        ctx.viewer?.kind === 'user' ? { id: ctx.viewer.userId } : null,
    },
    Mutation: {
      signUp: async (_: unknown, args: { input: unknown }, ctx: AuthContext) =>
        payload(await accounts.signUp(parseInput(signUpInput, args.input), ctx.client)),
      signIn: async (_: unknown, args: { input: unknown }, ctx: AuthContext) =>
        payload(await accounts.signIn(parseInput(signInInput, args.input), ctx.client)),
      refreshSession: async (_: unknown, args: { refreshToken: unknown }, ctx: AuthContext) => {
        const refreshToken = parseInput(tokenInput, args.refreshToken, 'refreshToken');
        return payload(await sessions.refresh(refreshToken, (id) => ctx.accountLoader.load(id)));
      },
      signOut: async (_: unknown, args: { refreshToken?: unknown }, ctx: AuthContext) => {
        if (args.refreshToken != null) {
          return sessions.endByRefreshToken(parseInput(tokenInput, args.refreshToken, 'refreshToken'));
        }
        const viewer = requireUser(ctx);
        return sessions.end(viewer.userId, viewer.sessionId);
      },
      signOutEverywhere: async (_: unknown, __: unknown, ctx: AuthContext) => {
        await sessions.endAll(requireUser(ctx).userId, 'signed_out_everywhere');
        return true;
      },
      changePassword: (_: unknown, args: unknown, ctx: AuthContext) => {
        const viewer = requireUser(ctx);
        const input = parseInput(changePasswordInput, args);
        return accounts.changePassword(
          viewer.userId,
          viewer.sessionId,
          input.currentPassword,
          input.newPassword,
        );
      },
      requestPasswordReset: (_: unknown, args: { email: unknown }, ctx: AuthContext) => {
        // Any string is accepted and answered alike: a malformed email simply has no account (it still counts
        // against the client address's budget).
        const email = emailInput.safeParse(args.email);
        return accounts.requestPasswordReset(email.success ? email.data : null, ctx.client);
      },
      resetPassword: (_: unknown, args: unknown) => {
        const input = parseInput(resetPasswordInput, args);
        return accounts.resetPassword(input.token, input.newPassword);
      },
      requestEmailVerification: (_: unknown, __: unknown, ctx: AuthContext) =>
        accounts.requestEmailVerification(requireUser(ctx).userId, ctx.client),
      verifyEmail: (_: unknown, args: { token: unknown }) =>
        accounts.verifyEmail(parseInput(z.object({ token: tokenInput }), args).token),
      requestEmailChange: (_: unknown, args: unknown, ctx: AuthContext) => {
        const viewer = requireUser(ctx);
        const { newEmail, currentPassword } = parseInput(requestEmailChangeInput, args);
        return accounts.requestEmailChange(viewer.userId, newEmail, currentPassword, ctx.client);
      },
      confirmEmailChange: (_: unknown, args: { token: unknown }) =>
        accounts.confirmEmailChange(parseInput(z.object({ token: tokenInput }), args).token),
    },
    User: {
      __resolveReference: (reference: UserRef): UserRef => ({ id: reference.id }),
      emailVerified: async (user: UserRef, _: unknown, ctx: AuthContext) =>
        (await accountFor(user, ctx))?.emailVerified ?? false,
      roles: async (user: UserRef, _: unknown, ctx: AuthContext) =>
        (await accountFor(user, ctx))?.roles ?? [],
      sessions: async (user: UserRef, _: unknown, ctx: AuthContext) => {
        requireSelfOrAdmin(ctx, user.id);
        const list = await sessions.listActive(user.id);
        return list.map((s) => sessionView(s, ctx.viewer?.sessionId));
      },
    },
  };
}
