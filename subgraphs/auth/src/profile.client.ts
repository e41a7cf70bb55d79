import { callSubgraph, ROLE_SERVICE, SERVICE_SUBJECT_PREFIX, type ServiceRouter } from '@aiva/shared';
import type { KeyRing } from './signing-keys.js';

export interface NewProfile {
  email: string;
  username: string;
  firstName: string;
  lastName: string;
}

/** Creates and removes profiles in the users subgraph, which owns them. */
export interface ProfileClient {
  create(profile: NewProfile): Promise<{ id: string }>;
  remove(id: string): Promise<void>;
}

const SERVICE_SUBJECT = `${SERVICE_SUBJECT_PREFIX}auth`;
/** The subgraph that owns profiles. */
const USERS = 'users';

/**
 * Talks to users directly, to an instance of the routing table (or users' static routing URL), as the
 * `service:auth` caller: a 60-second access token signed with auth's own key, so users' `createUser` (admin or
 * service only) accepts it and no one can pose as auth without that key. Never through the public gateway,
 * whose per-client rate limit every sign-up would then share. Users' input errors come back as they are (same
 * code and field). Both calls are mutations: one attempt each, never repeated on another instance.
 */
export function createProfileClient(options: {
  router: ServiceRouter;
  keys: KeyRing;
  timeoutMs?: number;
}): ProfileClient {
  async function call<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const { token } = await options.keys.sign(
      { sub: SERVICE_SUBJECT, sid: 'service', roles: [ROLE_SERVICE] },
      60,
    );
    return callSubgraph<T>({
      router: options.router,
      service: USERS,
      token,
      query,
      variables,
      retryable: false,
      timeoutMs: options.timeoutMs ?? 10_000,
    });
  }

  return {
    async create(profile) {
      const data = await call<{ createUser: { id: string } }>(
        'mutation AuthCreateProfile($input: CreateUserInput!) { createUser(input: $input) { id } }',
        { input: profile },
      );
      return data.createUser;
    },
    async remove(id) {
      await call('mutation AuthRemoveProfile($id: ID!) { deleteUser(id: $id) }', { id });
    },
  };
}
