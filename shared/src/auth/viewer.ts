/** Who is asking: a person (with a session) or another AIVA service. */
export interface Viewer {
  /** `sub`: the user id, or `service:<name>` for a service. */
  userId: string;
  /** `sid`: the session the token belongs to (`service` for service tokens). */
  sessionId: string;
  roles: readonly string[];
  kind: 'user' | 'service';
}

export const ACCESS_TOKEN_TYPE = 'at+jwt';
/** The only algorithms access tokens may use (the explicit allowlist every verifier applies). */
export const ACCESS_TOKEN_ALGORITHMS = ['EdDSA'] as const;
export const SERVICE_SUBJECT_PREFIX = 'service:';

export const ROLE_ADMIN = 'admin';
export const ROLE_USER = 'user';
export const ROLE_SERVICE = 'service';
