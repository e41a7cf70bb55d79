import {
  forbidden,
  idCursor,
  parseInput,
  type RequestContext,
  ROLE_ADMIN,
  ROLE_SERVICE,
  requireRole,
  requireUser,
  type ViewerContext,
} from '@aiva/shared';
import { GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { z } from 'zod';
import {
  notificationId,
  pageSize,
  preferencesInput,
  pushSubscriptionInput,
  sendNotificationInput,
  smsNumber,
} from './notification.input.js';
import type { NotificationService } from './notification.service.js';
import type { PreferenceService } from './preference.service.js';
import type { NotificationRecord } from './store/notification.store.js';

export interface NotificationsContext extends RequestContext, ViewerContext {}

const cursor = idCursor('n:');
const listArgs = z.object({
  first: pageSize.default(20),
  after: z.string().nullish(),
  unreadOnly: z.boolean().nullish(),
});

/** The person themself only: not even an admin reads someone's notifications. */
function requireSelf(ctx: NotificationsContext, userId: string): string {
  const viewer = requireUser(ctx);
  if (viewer.userId !== userId) throw forbidden('Only the person can see their notifications');
  return viewer.userId;
}

function toGraphQL(record: NotificationRecord) {
  return {
    ...record,
    category: record.category.toUpperCase(),
    readAt: record.readAt?.toISOString() ?? null,
    createdAt: record.createdAt.toISOString(),
  };
}

const preferencesOut = (
  list: Array<{ category: string; channel: string; enabled: boolean; changeable: boolean }>,
) => list.map((p) => ({ ...p, category: p.category.toUpperCase(), channel: p.channel.toUpperCase() }));

/** JSON values, as they are (output only in this schema; literals are parsed for completeness). */
const jsonScalar = new GraphQLScalarType({
  name: 'JSON',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: function literal(node: ValueNode): unknown {
    switch (node.kind) {
      case Kind.STRING:
      case Kind.BOOLEAN:
        return node.value;
      case Kind.INT:
      case Kind.FLOAT:
        return Number(node.value);
      case Kind.OBJECT:
        return Object.fromEntries(node.fields.map((f) => [f.name.value, literal(f.value)]));
      case Kind.LIST:
        return node.values.map(literal);
      default:
        return null;
    }
  },
});

/** Thin: parse input → call the service → map the result. */
export function createResolvers(
  notifications: NotificationService,
  preferences: PreferenceService,
  vapidPublicKey: string,
) {
  return {
    JSON: jsonScalar,
    User: {
      notifications: async (user: { id: string }, args: unknown, ctx: NotificationsContext) => {
        const userId = requireSelf(ctx, user.id);
        const { first, after, unreadOnly } = parseInput(listArgs, args);
        const page = await notifications.list(userId, {
          first,
          ...(after ? { beforeId: cursor.decode(after) } : {}),
          unreadOnly: unreadOnly ?? false,
        });
        const edges = page.notifications.map((node) => ({
          cursor: cursor.encode(node.id),
          node: toGraphQL(node),
        }));
        return {
          edges,
          pageInfo: { hasNextPage: page.hasNextPage, endCursor: edges.at(-1)?.cursor ?? null },
        };
      },
      unreadNotificationCount: async (user: { id: string }, _: unknown, ctx: NotificationsContext) =>
        notifications.countUnread(requireSelf(ctx, user.id)),
    },
    Notification: {
      // Another subgraph referencing a notification gets it only for its person.
      __resolveReference: async (ref: { id: string }, ctx: NotificationsContext) => {
        const viewer = requireUser(ctx);
        const record = await notifications.find(viewer.userId, parseInput(notificationId, ref.id, 'id'));
        return record ? toGraphQL(record) : null;
      },
    },
    Query: {
      notificationPreferences: async (_: unknown, __: unknown, ctx: NotificationsContext) =>
        preferencesOut(await preferences.list(requireUser(ctx).userId)),
      vapidPublicKey: () => vapidPublicKey,
    },
    Mutation: {
      sendNotification: async (_: unknown, args: { input: unknown }, ctx: NotificationsContext) => {
        const viewer = requireRole(ctx, ROLE_ADMIN, ROLE_SERVICE);
        return notifications.request(parseInput(sendNotificationInput, args.input, 'input'), viewer.userId);
      },
      markNotificationRead: async (_: unknown, args: { id: unknown }, ctx: NotificationsContext) => {
        const viewer = requireUser(ctx);
        return toGraphQL(
          await notifications.markRead(viewer.userId, parseInput(notificationId, args.id, 'id')),
        );
      },
      markAllNotificationsRead: async (_: unknown, __: unknown, ctx: NotificationsContext) =>
        notifications.markAllRead(requireUser(ctx).userId),
      updateNotificationPreferences: async (
        _: unknown,
        args: { input: unknown },
        ctx: NotificationsContext,
      ) => {
        const viewer = requireUser(ctx);
        const changes = parseInput(preferencesInput, args.input, 'input');
        return preferencesOut(await preferences.update(viewer.userId, changes));
      },
      registerPushSubscription: async (_: unknown, args: { input: unknown }, ctx: NotificationsContext) => {
        const viewer = requireUser(ctx);
        await preferences.registerPush(viewer.userId, parseInput(pushSubscriptionInput, args.input, 'input'));
        return true;
      },
      removePushSubscription: async (_: unknown, args: { endpoint: unknown }, ctx: NotificationsContext) => {
        const viewer = requireUser(ctx);
        return preferences.removePush(
          viewer.userId,
          parseInput(z.string().max(2048), args.endpoint, 'endpoint'),
        );
      },
      setSmsNumber: async (_: unknown, args: { number: unknown }, ctx: NotificationsContext) => {
        const viewer = requireUser(ctx);
        await preferences.setSmsNumber(viewer.userId, parseInput(smsNumber, args.number ?? null, 'number'));
        return true;
      },
    },
  };
}
