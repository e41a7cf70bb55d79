import { AivaError, ERROR_CODES, type ErrorCode, ROLE_SERVICE, SERVICE_SUBJECT_PREFIX } from '@aiva/shared';
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
const KNOWN_CODES = new Set<string>(ERROR_CODES);

interface GraphQLBody<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string; field?: string } }>;
}

/**
 * Talks to users through the supergraph (the gateway) like any client, as the `service:auth` caller: a
 * 60-second access token signed with auth's own key, so users' `createUser` (admin or service only) accepts it
 * and no one can pose as auth without that key. Users' input errors come back as they are (same code and field).
 */
export function createSupergraphProfileClient(options: {
  url: () => string;
  keys: KeyRing;
  timeoutMs?: number;
}): ProfileClient {
  async function call<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const { token } = await options.keys.sign(
      { sub: SERVICE_SUBJECT, sid: 'service', roles: [ROLE_SERVICE] },
      60,
    );
    let body: GraphQLBody<T>;
    try {
      const response = await fetch(options.url(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      body = (await response.json()) as GraphQLBody<T>;
    } catch {
      throw new AivaError('INTERNAL_SERVER_ERROR', 'The users service is unavailable', {
        serviceName: 'users',
      });
    }
    const error = body.errors?.[0];
    if (error) {
      const code = KNOWN_CODES.has(error.extensions?.code ?? '')
        ? (error.extensions?.code as ErrorCode)
        : 'INTERNAL_SERVER_ERROR';
      const field = error.extensions?.field;
      throw new AivaError(code, error.message, field ? { field } : {});
    }
    if (!body.data) throw new AivaError('INTERNAL_SERVER_ERROR', 'The users service gave no answer');
    return body.data;
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
