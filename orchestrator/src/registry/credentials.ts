import { isRegistryToken } from '@aiva/shared';

/** Whether a write may go ahead: yes, or the HTTP status and message to refuse it with. */
export type CredentialVerdict =
  | { ok: true }
  | { ok: false; status: 401; code: 'UNAUTHENTICATED'; message: string }
  | { ok: false; status: 403; code: 'FORBIDDEN'; message: string };

const BEARER = /^Bearer ([A-Za-z0-9_-]{16,128})$/;

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function registryBearer(header: string | undefined): string | undefined {
  return header ? BEARER.exec(header.trim())?.[1] : undefined;
}

/**
 * Checks a write's registry credential: it must be `registryToken(secret, service)`. A valid token of another
 * service (one of `otherServices`) is FORBIDDEN; anything else, or no secret configured, is UNAUTHENTICATED.
 */
export function checkCredential(options: {
  secret: string | undefined;
  authorization: string | undefined;
  service: string;
  otherServices: Iterable<string>;
}): CredentialVerdict {
  if (!options.secret) {
    return {
      ok: false,
      status: 401,
      code: 'UNAUTHENTICATED',
      message: 'Registration is closed: the orchestrator has no REGISTRY_SECRET',
    };
  }
  const token = registryBearer(options.authorization);
  if (!token) {
    return { ok: false, status: 401, code: 'UNAUTHENTICATED', message: 'A registry credential is required' };
  }
  if (isRegistryToken(options.secret, options.service, token)) return { ok: true };
  for (const other of options.otherServices) {
    if (other !== options.service && isRegistryToken(options.secret, other, token)) {
      return {
        ok: false,
        status: 403,
        code: 'FORBIDDEN',
        message: `This credential is not the credential of ${options.service}`,
      };
    }
  }
  return { ok: false, status: 401, code: 'UNAUTHENTICATED', message: 'The registry credential is not valid' };
}
