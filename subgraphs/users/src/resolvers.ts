import {
  forbidden,
  isSelfOrAdmin,
  parseInput,
  type RequestContext,
  ROLE_ADMIN,
  ROLE_SERVICE,
  requireRole,
  requireSelfOrAdmin,
  type ViewerContext,
} from '@aiva/shared';
import DataLoader from 'dataloader';
import { z } from 'zod';
import type { UserRecord } from './store/user.store.js';
import { decodeCursor, encodeCursor } from './user.cursor.js';
import { createUserInput, pageSize, updateUserInput, userId } from './user.input.js';
import type { UserService } from './user.service.js';

export interface UsersContext extends RequestContext, ViewerContext {
  /** Batches `_entities` lookups: one store query per request, whatever the number of representations. */
  userLoader: DataLoader<string, UserRecord | null>;
}

export function createUserLoader(service: UserService): DataLoader<string, UserRecord | null> {
  return new DataLoader((ids) => service.findByIds(ids), { maxBatchSize: 1000 });
}

const idArg = z.object({ id: userId });
const listArgs = z.object({ first: pageSize.default(20), after: z.string().nullish() });

/** Personal fields are for the person themself, admins and services (auth, for instance). */
function maySeePersonal(ctx: UsersContext, user: UserRecord): boolean {
  return (
    ctx.viewer?.kind === 'service' ||
    ctx.viewer?.roles.includes(ROLE_SERVICE) === true ||
    isSelfOrAdmin(ctx, user.id)
  );
}

/** Thin: parse input → call the service → map the result. */
export function createResolvers(service: UserService) {
  return {
    Query: {
      user: async (_: unknown, args: unknown, ctx: UsersContext) => {
        const { id } = parseInput(idArg, args);
        return ctx.userLoader.load(id);
      },
      users: async (_: unknown, args: unknown, ctx: UsersContext) => {
        requireRole(ctx, ROLE_ADMIN);
        const { first, after } = parseInput(listArgs, args);
        const afterId = after ? decodeCursor(after) : undefined;
        const page = await service.list(first, afterId);
        const edges = page.users.map((node) => ({ cursor: encodeCursor(node.id), node }));
        return {
          edges,
          // Counted only when the query selects it (the default resolver calls functions).
          totalCount: () => service.count(),
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
        };
      },
    },
    Mutation: {
      // Admins, and auth creating the profile of a person signing up.
      createUser: (_: unknown, args: { input: unknown }, ctx: UsersContext) => {
        requireRole(ctx, ROLE_ADMIN, ROLE_SERVICE);
        return service.create(parseInput(createUserInput, args.input));
      },
      updateUser: (_: unknown, args: { id: unknown; input: unknown }, ctx: UsersContext) => {
        const { id } = parseInput(idArg, { id: args.id });
        requireSelfOrAdmin(ctx, id);
        return service.update(id, parseInput(updateUserInput, args.input));
      },
      // The person themself, admins, and auth undoing a sign-up that failed half-way.
      deleteUser: (_: unknown, args: unknown, ctx: UsersContext) => {
        const { id } = parseInput(idArg, args);
        if (ctx.viewer?.kind !== 'service') requireSelfOrAdmin(ctx, id);
        return service.delete(id);
      },
    },
    User: {
      __resolveReference: (reference: { id: string }, ctx: UsersContext) => ctx.userLoader.load(reference.id),
      // Nullable: anyone else gets null and a FORBIDDEN error on this field (the rest of the profile still resolves).
      email: (user: UserRecord, _: unknown, ctx: UsersContext) => {
        if (maySeePersonal(ctx, user)) return user.email;
        throw forbidden('Only the person themself and admins may see this email', { field: 'email' });
      },
      displayName: (user: UserRecord) => user.displayName ?? `${user.firstName} ${user.lastName}`,
      createdAt: (user: UserRecord) => user.createdAt.toISOString(),
      updatedAt: (user: UserRecord) => user.updatedAt.toISOString(),
    },
  };
}
