import { forbidden, unauthenticated } from '../errors.js';
import { ROLE_ADMIN, type Viewer } from './viewer.js';

/** What guards need of a resolver context. */
export interface ViewerContext {
  viewer?: Viewer;
}

/** The signed-in viewer, or UNAUTHENTICATED. */
export function requireUser(ctx: ViewerContext): Viewer {
  if (!ctx.viewer) throw unauthenticated('Sign in to do this');
  return ctx.viewer;
}

/** A viewer holding at least one of `roles`, else FORBIDDEN (UNAUTHENTICATED when nobody is signed in). */
export function requireRole(ctx: ViewerContext, ...roles: string[]): Viewer {
  const viewer = requireUser(ctx);
  if (!roles.some((role) => viewer.roles.includes(role))) throw forbidden('You are not allowed to do this');
  return viewer;
}

/** The viewer when they are `userId` themself or an admin, else FORBIDDEN. */
export function requireSelfOrAdmin(ctx: ViewerContext, userId: string): Viewer {
  const viewer = requireUser(ctx);
  if (viewer.userId !== userId && !viewer.roles.includes(ROLE_ADMIN)) {
    throw forbidden('You can only do this for your own account');
  }
  return viewer;
}

export function isSelfOrAdmin(ctx: ViewerContext, userId: string): boolean {
  return !!ctx.viewer && (ctx.viewer.userId === userId || ctx.viewer.roles.includes(ROLE_ADMIN));
}
