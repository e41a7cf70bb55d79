import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../config.js';
import type { Logger } from '../log.js';
import { PRIVATE_DIR_MODE, placePrivateFile, readPrivateFileOf } from '../private-file.js';

// Service credentials: what a service (`ai`, `media`, ...) proves itself with to get a short-lived service token
// from auth (`POST /oauth/token`, OAuth 2.0 client credentials). A credential is derived from one secret that only
// auth needs to hold (SERVICE_SECRET): HMAC-SHA256 of the service name under it, so auth checks a credential
// without a table of them, a credential only names its own service, and nobody without one can pose as a service.

/** Domain separation: a registry token (`aiva.registry.v1:`) is never a service credential, nor the reverse. */
const SERVICE_CREDENTIAL_CONTEXT = 'aiva.service-credential.v1:';
/** A service's name, as in the registry: lower case, digits and dashes. */
const SERVICE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
/** Shortest SERVICE_SECRET accepted. */
export const MIN_SERVICE_SECRET_LENGTH = 32;
/** The machine's secret (embedded default) under DATA_DIR. */
export const SERVICE_SECRET_FILE = 'service-secret.json';

/** Whether `name` is a well-formed service name (`ai`, `media`, `notifications`). */
export function isServiceName(name: string): boolean {
  return SERVICE_NAME.test(name);
}

/**
 * The credential of `service` under `secret`: HMAC-SHA256 of `aiva.service-credential.v1:<service>`, base64url.
 * Throws a RangeError for a malformed service name (never echoing the secret).
 */
export function serviceCredential(secret: string, service: string): string {
  if (!isServiceName(service)) throw new RangeError('service must be a lower-case service name');
  return createHmac('sha256', secret).update(`${SERVICE_CREDENTIAL_CONTEXT}${service}`).digest('base64url');
}

/**
 * Whether `credential` is the credential of `service` under `secret`, compared in constant time. False for a
 * malformed service name or a credential of another length.
 */
export function verifyServiceCredential(secret: string, service: string, credential: string): boolean {
  if (!isServiceName(service)) return false;
  const expected = Buffer.from(serviceCredential(secret, service));
  const given = Buffer.from(credential);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What the service secret and credentials are read from (a service's configuration). */
export interface ServiceSecretConfig {
  /** The secret itself (auth in production); at least 32 characters. */
  SERVICE_SECRET?: string | undefined;
  DATA_DIR: string;
}

export interface ServiceCredentialConfig extends ServiceSecretConfig {
  /** This service's credential as given (`pnpm orchestrator service-credential <service>`). */
  SERVICE_CREDENTIAL?: string | undefined;
}

/** The machine's secret file of a configuration: `<DATA_DIR>/service-secret.json`. */
export function serviceSecretFile(config: { DATA_DIR: string }): string {
  return join(config.DATA_DIR, SERVICE_SECRET_FILE);
}

const secretFileSchema = z.object({
  version: z.literal(1),
  secret: z.string().min(MIN_SERVICE_SECRET_LENGTH),
});

async function readSecretFile(file: string, logger: Logger | undefined): Promise<string | null> {
  const stored = await readPrivateFileOf(file, 'service secret file', secretFileSchema, logger);
  if (stored === null) return null;
  return stored.secret;
}

/**
 * Creates the secret file with 32 random bytes unless it exists: a temp file (mode 0600) linked into place, which
 * fails when another process created it first (that file wins, nobody overwrites it).
 */
async function createSecretFile(file: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });
  const content = `${JSON.stringify(
    { version: 1, secret: randomBytes(32).toString('base64url'), createdAt: new Date().toISOString() },
    null,
    2,
  )}\n`;
  await placePrivateFile(file, content, (tmp) =>
    link(tmp, file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    }),
  );
}

/**
 * The secret service credentials derive from: SERVICE_SECRET when set (at least 32 characters, else a
 * ConfigError), else the machine's `<DATA_DIR>/service-secret.json`, created once with 32 random bytes (mode 0600,
 * directory 0700; processes racing to create it all end with the first one's secret). The embedded default: every
 * service on one machine (`pnpm start`) shares it with no configuration. The secret never reaches a log or an error.
 */
export async function loadServiceSecret(
  config: ServiceSecretConfig,
  options: { logger?: Logger } = {},
): Promise<string> {
  const given = config.SERVICE_SECRET;
  if (given !== undefined && given !== '') {
    if (given.length < MIN_SERVICE_SECRET_LENGTH) {
      throw new ConfigError([`SERVICE_SECRET: must be at least ${MIN_SERVICE_SECRET_LENGTH} characters`]);
    }
    return given;
  }
  const file = serviceSecretFile(config);
  const existing = await readSecretFile(file, options.logger);
  if (existing !== null) return existing;
  await createSecretFile(file);
  const created = await readSecretFile(file, options.logger);
  if (created === null) throw new Error(`service secret file ${file} could not be created`);
  options.logger?.info({ file }, 'service secret file ready');
  return created;
}

/**
 * This service's credential for service tokens from auth: SERVICE_CREDENTIAL when set; else derived from
 * SERVICE_SECRET when set; else derived from the machine's secret file (read, or created), so that on one machine
 * every service gets tokens with no configuration.
 */
export async function serviceCredentialOf(
  config: ServiceCredentialConfig,
  service: string,
  options: { logger?: Logger } = {},
): Promise<string> {
  if (config.SERVICE_CREDENTIAL !== undefined && config.SERVICE_CREDENTIAL !== '') {
    return config.SERVICE_CREDENTIAL;
  }
  return serviceCredential(await loadServiceSecret(config, options), service);
}
