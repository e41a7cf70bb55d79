import { randomUUID } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  ACCESS_TOKEN_TYPE,
  type Logger,
  PRIVATE_DIR_MODE,
  placePrivateFile,
  readPrivateFileOf,
} from '@aiva/shared';
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  SignJWT,
} from 'jose';
import { z } from 'zod';

/** The one algorithm access tokens are signed with (Ed25519), matching ACCESS_TOKEN_ALGORITHMS. */
const ALG = 'EdDSA';
/** How long a retired key outlives the longest access token it may have signed (covers verifiers' 30 s leeway). */
const RETIREMENT_GRACE_SECONDS = 60;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface OpenKeyRingOptions {
  /** The JSON file holding the keys (private keys included): created with mode 0600. */
  file: string;
  /** The current key is replaced once it is older than this (by `rotateIfDue`). */
  rotationDays: number;
  /** Default and maximum lifetime of an access token; retired keys are published this long (+60 s) after retiring. */
  accessTokenTtlSeconds: number;
  issuer: string;
  audience: string;
  logger?: Logger;
  /** The clock (tests). */
  now?: () => Date;
}

export interface AccessTokenClaims {
  sub: string;
  sid: string;
  roles: readonly string[];
}

/** A public JWK as published at `/.well-known/jwks.json`. */
export interface PublicSigningJwk extends JWK {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: typeof ALG;
  use: 'sig';
}

export interface KeyRing {
  /**
   * An access token (`typ: at+jwt`, EdDSA, `kid` of the current key) with `sub`, `sid`, `roles`, `iss`, `aud`,
   * `iat`, `exp` and a random `jti`. `ttlSeconds` defaults to `accessTokenTtlSeconds` and is capped at it (a
   * longer token would outlive its key after a rotation); `expiresIn` is the lifetime actually given.
   */
  sign(claims: AccessTokenClaims, ttlSeconds?: number): Promise<{ token: string; expiresIn: number }>;
  /** Public keys only: the current key, then retired keys still within their grace period. */
  jwks(): { keys: PublicSigningJwk[] };
  currentKid(): string;
  /** A new current key; the previous one retires (still published until its tokens have expired). */
  rotate(): Promise<void>;
  /** Rotates when the current key is older than `rotationDays`, and drops expired retired keys. True if rotated. */
  rotateIfDue(): Promise<boolean>;
}

const isoDate = z.string().refine((value) => !Number.isNaN(Date.parse(value)), 'expected an ISO date');
const publicJwkSchema = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string().min(1) });
const storedKeySchema = z.object({
  kid: z.string().min(1),
  createdAt: isoDate,
  retiredAt: isoDate.nullable(),
  privateJwk: publicJwkSchema.extend({ d: z.string().min(1) }),
  publicJwk: publicJwkSchema,
});
const keyFileSchema = z.object({ version: z.literal(1), keys: z.array(storedKeySchema) });

type StoredKey = z.infer<typeof storedKeySchema>;
type KeyFile = z.infer<typeof keyFileSchema>;

interface CurrentKey {
  kid: string;
  privateKey: CryptoKey | Uint8Array;
  createdAt: Date;
}

function validateOptions(options: OpenKeyRingOptions): void {
  if (!(Number.isFinite(options.rotationDays) && options.rotationDays > 0)) {
    throw new RangeError('rotationDays must be a positive number');
  }
  if (!(Number.isInteger(options.accessTokenTtlSeconds) && options.accessTokenTtlSeconds > 0)) {
    throw new RangeError('accessTokenTtlSeconds must be a positive integer');
  }
  if (!options.file) throw new RangeError('file is required');
}

async function newKey(now: Date): Promise<StoredKey> {
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const priv = await exportJWK(privateKey);
  const pub = await exportJWK(publicKey);
  if (!priv.d || !pub.x || priv.crv !== 'Ed25519' || pub.crv !== 'Ed25519') {
    throw new Error('unexpected key material from generateKeyPair');
  }
  const publicJwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: pub.x };
  return {
    kid: await calculateJwkThumbprint(publicJwk),
    createdAt: now.toISOString(),
    retiredAt: null,
    privateJwk: { ...publicJwk, d: priv.d },
    publicJwk,
  };
}

/**
 * Writes `data` to `file` atomically: a temp file (mode 0600) in the same directory, fsync, rename over the
 * target, then fsync of the directory (best effort).
 */
async function writeAtomically(file: string, data: string): Promise<void> {
  const dir = dirname(file);
  await placePrivateFile(file, data, (tmp) => rename(tmp, file));
  try {
    const dirHandle = await open(dir, 'r');
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  } catch {
    // fsync of a directory is not supported everywhere; the rename itself is atomic.
  }
}

/** Reads and validates the key file; null when it does not exist. Error messages never include key material. */
async function readKeyFile(file: string, logger: Logger | undefined): Promise<KeyFile | null> {
  const stored = await readPrivateFileOf(file, 'signing key file', keyFileSchema, logger);
  if (stored === null) return null;
  for (const key of stored.keys) {
    if (key.privateJwk.x !== key.publicJwk.x) {
      throw new Error(`signing key file ${file} is invalid: key ${key.kid} has mismatched public parts`);
    }
    if ((await calculateJwkThumbprint(key.publicJwk)) !== key.kid) {
      throw new Error(`signing key file ${file} is invalid: key ${key.kid} does not match its thumbprint`);
    }
  }
  return stored;
}

/**
 * Opens (or creates) the persisted Ed25519 key ring that signs access tokens. Keys live in one JSON file
 * (`{ version: 1, keys: [{ kid, createdAt, retiredAt, privateJwk, publicJwk }] }`, mode 0600, written
 * atomically); `kid` is the RFC 7638 thumbprint of the public key. Rotation keeps the previous key published
 * until every token it signed has expired, so nobody is signed out. Calls `rotateIfDue()` once before returning;
 * run it on a timer afterwards. One process per file.
 */
export async function openKeyRing(options: OpenKeyRingOptions): Promise<KeyRing> {
  validateOptions(options);
  const { file, logger, issuer, audience, accessTokenTtlSeconds } = options;
  const now = options.now ?? (() => new Date());
  const retentionMs = (accessTokenTtlSeconds + RETIREMENT_GRACE_SECONDS) * 1000;
  const rotationMs = options.rotationDays * DAY_MS;

  await mkdir(dirname(file), { recursive: true, mode: PRIVATE_DIR_MODE });

  let keys: StoredKey[] = [];
  let current: CurrentKey | undefined;

  const stillPublished = (key: StoredKey, at: Date) =>
    key.retiredAt === null || Date.parse(key.retiredAt) + retentionMs > at.getTime();

  const persist = (next: StoredKey[]) =>
    writeAtomically(file, `${JSON.stringify({ version: 1, keys: next } satisfies KeyFile, null, 2)}\n`);

  /** Makes `next` the ring's state (after it was written): imports the current key's private half. */
  const adopt = async (next: StoredKey[]) => {
    const active = next.find((key) => key.retiredAt === null);
    if (!active) throw new Error('signing key ring has no current key');
    const privateKey = await importJWK(active.privateJwk, ALG);
    keys = next;
    current = { kid: active.kid, privateKey, createdAt: new Date(active.createdAt) };
  };

  /** Current key first; retired keys past their grace period dropped. */
  const withNewCurrent = async (existing: StoredKey[], at: Date): Promise<StoredKey[]> => {
    const retired = existing.map((key) =>
      key.retiredAt === null ? { ...key, retiredAt: at.toISOString() } : key,
    );
    return [await newKey(at), ...retired.filter((key) => stillPublished(key, at))];
  };

  // Serializes rotations and prunes within this process.
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task, task);
    queue = run.catch(() => {});
    return run;
  };

  const rotateNow = async (reason: string) => {
    const at = now();
    const previous = current?.kid;
    const next = await withNewCurrent(keys, at);
    await persist(next);
    await adopt(next);
    logger?.info({ kid: current?.kid, previousKid: previous, reason }, 'signing key rotated');
  };

  const rotateIfDueNow = async (): Promise<boolean> => {
    const at = now();
    if (!current || at.getTime() - current.createdAt.getTime() >= rotationMs) {
      await rotateNow(current ? 'due' : 'missing');
      return true;
    }
    const kept = keys.filter((key) => stillPublished(key, at));
    if (kept.length !== keys.length) {
      await persist(kept);
      await adopt(kept);
      logger?.info({ dropped: keys.length - kept.length }, 'expired signing keys dropped');
    }
    return false;
  };

  // Load, and normalize what was found: exactly one current key (the newest), current first.
  const loaded = await readKeyFile(file, logger);
  if (loaded === null) {
    const first = await newKey(now());
    await persist([first]);
    await adopt([first]);
    logger?.info({ kid: first.kid, file }, 'signing key ring created');
  } else {
    const at = now();
    const active = loaded.keys
      .filter((key) => key.retiredAt === null)
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
    const [newest, ...extra] = active;
    if (!newest) {
      // Every key retired (or none at all): start a new current key, keep the retired ones published.
      const next = await withNewCurrent(loaded.keys, at);
      await persist(next);
      await adopt(next);
      logger?.warn({ kid: current?.kid, file }, 'signing key file had no current key; created one');
    } else {
      const retired = loaded.keys
        .filter((key) => key !== newest)
        .map((key) => (extra.includes(key) ? { ...key, retiredAt: at.toISOString() } : key));
      const next = [newest, ...retired];
      if (extra.length > 0 || next.some((key, i) => key !== loaded.keys[i])) {
        await persist(next);
        if (extra.length > 0)
          logger?.warn({ file, retired: extra.length }, 'retired extra current signing keys');
      }
      await adopt(next);
    }
  }
  await exclusive(rotateIfDueNow);

  return {
    async sign(claims, ttlSeconds = accessTokenTtlSeconds) {
      if (!(Number.isInteger(ttlSeconds) && ttlSeconds > 0)) {
        throw new RangeError('ttlSeconds must be a positive integer');
      }
      // A token may not outlive its key's retirement grace period.
      const lifetime = Math.min(ttlSeconds, accessTokenTtlSeconds);
      const key = current!;
      const iat = Math.floor(now().getTime() / 1000);
      const token = await new SignJWT({ sid: claims.sid, roles: [...claims.roles] })
        .setProtectedHeader({ alg: ALG, typ: ACCESS_TOKEN_TYPE, kid: key.kid })
        .setSubject(claims.sub)
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetime)
        .setJti(randomUUID())
        .sign(key.privateKey);
      return { token, expiresIn: lifetime };
    },
    jwks() {
      const at = now();
      return {
        keys: keys
          .filter((key) => stillPublished(key, at))
          .map((key) => ({
            kty: 'OKP' as const,
            crv: 'Ed25519' as const,
            x: key.publicJwk.x,
            kid: key.kid,
            alg: ALG,
            use: 'sig' as const,
          })),
      };
    },
    currentKid: () => current!.kid,
    rotate: () => exclusive(() => rotateNow('manual')),
    rotateIfDue: () => exclusive(rotateIfDueNow),
  };
}
