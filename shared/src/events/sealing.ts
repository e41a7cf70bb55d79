import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { PRIVATE_DIR_MODE, placePrivateFile, readPrivateFileOf } from '../private-file.js';

// ---------------------------------------------------------------------------------------------------------------
// Sealed fields: single-use secrets (reset, verification and email-change tokens) travel in events encrypted, so
// neither an outbox row nor the stream nor the SQLite event log holds them in plaintext. Only a process holding
// the sealing keys (the producer, and the consumer that sends the mail) can open them.
//
// Format: `sealed:v1:<kid>:<nonce>:<ciphertext+tag>`, nonce and ciphertext base64url. AES-256-GCM with a random
// 96-bit nonce and a 128-bit tag; the header `sealed:v1:<kid>` is authenticated too (additional data), so a
// value cannot be moved to another key id unnoticed.
// ---------------------------------------------------------------------------------------------------------------

export const SEALED_PREFIX = 'sealed:v1:';
const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A key id: letters, digits, `_` and `-` (it sits between colons in a sealed value). */
const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const B64URL = '[A-Za-z0-9_-]';

/** What a sealed value looks like (the catalog's `sealed()` checks this shape; only opening proves it). */
export const SEALED_PATTERN = new RegExp(`^sealed:v1:${B64URL}{1,64}:${B64URL}{16}:${B64URL}{22,}$`);

export interface SealingKey {
  kid: string;
  /** 32 bytes. */
  key: Buffer;
}

/** The keys of a process: `current` seals; every key (current included) opens. */
export interface SealingKeys {
  readonly current: SealingKey;
  readonly all: ReadonlyMap<string, SealingKey>;
}

/** Thrown when a value is not sealed, names an unknown key, or fails authentication. Never carries the value. */
export class SealingError extends Error {
  constructor(reason: string) {
    super(`cannot open sealed value: ${reason}`);
    this.name = 'SealingError';
  }
}

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && SEALED_PATTERN.test(value);
}

/** A key ring from keys, the first sealing. Throws on an empty list, a bad key id or length, or a duplicate id. */
export function sealingKeys(keys: readonly SealingKey[]): SealingKeys {
  const [current] = keys;
  if (!current) throw new Error('at least one sealing key is required');
  const all = new Map<string, SealingKey>();
  for (const key of keys) {
    if (!KID_PATTERN.test(key.kid)) throw new Error('a sealing key id may use only A-Z a-z 0-9 _ - (1-64)');
    if (key.key.length !== KEY_BYTES) throw new Error(`sealing key ${key.kid} must be ${KEY_BYTES} bytes`);
    if (all.has(key.kid)) throw new Error(`sealing key id ${key.kid} is used twice`);
    all.set(key.kid, { kid: key.kid, key: Buffer.from(key.key) });
  }
  return { current: all.get(current.kid)!, all };
}

/** A new random key (32 bytes) with a random key id. */
export function generateSealingKey(): SealingKey {
  return { kid: randomBytes(6).toString('base64url'), key: randomBytes(KEY_BYTES) };
}

/** Seals a string with the current key. Every call uses a fresh random nonce. */
export function seal(plaintext: string, keys: SealingKeys): string {
  const { kid, key } = keys.current;
  const header = `${SEALED_PREFIX}${kid}`;
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(header, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${header}:${nonce.toString('base64url')}:${body.toString('base64url')}`;
}

/** Opens a sealed value with the key it names. Throws SealingError (without the value) when it cannot. */
export function openSealed(value: string, keys: SealingKeys): string {
  if (!isSealed(value)) throw new SealingError('not a sealed value');
  const [, , kid, nonceText, bodyText] = value.split(':') as [string, string, string, string, string];
  const entry = keys.all.get(kid);
  if (!entry) throw new SealingError(`unknown key id ${kid}`);
  const nonce = Buffer.from(nonceText, 'base64url');
  const body = Buffer.from(bodyText, 'base64url');
  if (nonce.length !== NONCE_BYTES || body.length < TAG_BYTES) throw new SealingError('malformed');
  try {
    const decipher = createDecipheriv(ALGORITHM, entry.key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(`${SEALED_PREFIX}${kid}`, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(body.subarray(0, body.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new SealingError('authentication failed');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

/** Parses `<kid>:<base64url 32-byte key>[,<kid>:<key>...]`; the first entry seals. Errors never echo key material. */
export function parseSealingKeys(spec: string): SealingKeys {
  const entries = spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const keys = entries.map((entry, index) => {
    const colon = entry.indexOf(':');
    const kid = colon > 0 ? entry.slice(0, colon) : '';
    const text = colon > 0 ? entry.slice(colon + 1) : '';
    if (!KID_PATTERN.test(kid) || !/^[A-Za-z0-9_-]+={0,2}$/.test(text)) {
      throw new Error(`entry ${index + 1} is not <kid>:<base64url key>`);
    }
    const key = Buffer.from(text, 'base64url');
    if (key.length !== KEY_BYTES) throw new Error(`entry ${index + 1} (${kid}) is not a 32-byte key`);
    return { kid, key };
  });
  return sealingKeys(keys);
}

/**
 * An optional variable holding a key ring, `<kid>:<base64url 32-byte key>[,<kid>:<key>...]`, refused at start
 * with what is wrong (never the keys) when it is malformed.
 */
export const keyRingVariable = () =>
  z
    .string()
    .optional()
    .superRefine((value, ctx) => {
      if (value === undefined) return;
      try {
        parseSealingKeys(value);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    });

/**
 * The variables of the sealing keys, for the config schema of every service that seals or opens event fields
 * (`commonEnvSchema.extend(sealingEnvSchema.shape)`).
 */
export const sealingEnvSchema = z.object({
  /**
   * `<kid>:<base64url 32-byte key>[,<kid>:<key>...]`: the first seals, all open (list the old key after a new one
   * while events sealed with it may still be read). Unset: the keys file. Generate a key with
   * `node -e "console.log(require('crypto').randomBytes(32).toString('base64url'))"`.
   */
  EVENT_SEALING_KEYS: keyRingVariable(),
  /**
   * Without EVENT_SEALING_KEYS: the JSON keys file, created on first start with mode 0600 (every process that
   * seals or opens must read the same file); default `<DATA_DIR>/event-sealing-keys.json`.
   */
  EVENT_SEALING_KEYS_FILE: z.string().optional(),
});
export type SealingEnv = z.infer<typeof sealingEnvSchema>;

/** The keys file of a configuration. */
export function sealingKeysFile(config: SealingEnv & { DATA_DIR: string }): string {
  return config.EVENT_SEALING_KEYS_FILE ?? join(config.DATA_DIR, 'event-sealing-keys.json');
}

const keyFileSchema = z.object({
  version: z.literal(1),
  keys: z
    .array(
      z.object({
        kid: z.string().regex(KID_PATTERN),
        key: z.string().regex(/^[A-Za-z0-9_-]+$/),
        createdAt: z.string(),
      }),
    )
    .min(1),
});

async function readKeyFile(file: string, logger: Logger | undefined): Promise<SealingKeys | null> {
  const stored = await readPrivateFileOf(file, 'event sealing key file', keyFileSchema, logger);
  if (stored === null) return null;
  try {
    return sealingKeys(stored.keys.map((k) => ({ kid: k.kid, key: Buffer.from(k.key, 'base64url') })));
  } catch (error) {
    throw new Error(`event sealing key file ${file} is invalid: ${(error as Error).message}`);
  }
}

/**
 * Creates the keys file with one new key unless it exists: written to a temp file (mode 0600), then linked into
 * place, which fails when another process created it first (that process's file wins, nobody overwrites).
 */
async function createKeyFile(file: string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const key = generateSealingKey();
  const content = `${JSON.stringify(
    {
      version: 1,
      keys: [{ kid: key.kid, key: key.key.toString('base64url'), createdAt: new Date().toISOString() }],
    },
    null,
    2,
  )}\n`;
  await placePrivateFile(file, content, (tmp) =>
    link(tmp, file).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    }),
  );
}

export interface LoadSealingKeysOptions {
  /** EVENT_SEALING_KEYS: when set, the file is not used. */
  keys?: string;
  /** The keys file (`sealingKeysFile(config)`), used without `keys`. */
  file: string;
  /** Create the file with a new key when it is missing (default true: the embedded default on a bare machine). */
  create?: boolean;
  logger?: Logger;
}

/**
 * The sealing keys of a process: from EVENT_SEALING_KEYS, else from the keys file (created on first start with a
 * new random key, mode 0600). Key material never reaches a log or an error message.
 */
export async function loadSealingKeys(options: LoadSealingKeysOptions): Promise<SealingKeys> {
  if (options.keys?.trim()) return parseSealingKeys(options.keys);
  const existing = await readKeyFile(options.file, options.logger);
  if (existing) return existing;
  if (options.create === false) throw new Error(`event sealing key file ${options.file} does not exist`);
  await createKeyFile(options.file);
  const created = await readKeyFile(options.file, options.logger);
  if (!created) throw new Error(`event sealing key file ${options.file} could not be created`);
  options.logger?.info({ file: options.file, kid: created.current.kid }, 'event sealing key file ready');
  return created;
}
