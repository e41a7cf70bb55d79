import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalVerifier, InvalidTokenError, type RejectionReason } from '@aiva/shared';
import { capturingLogger } from '@aiva/shared/testing';
import {
  base64url,
  type CryptoKey,
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type KeyRing, type OpenKeyRingOptions, openKeyRing } from '../src/signing-keys.js';

const ISSUER = 'aiva-auth-test';
const AUDIENCE = 'aiva-test';
const TTL = 900;
const DAY_MS = 86_400_000;
const CLAIMS = { sub: '01890000-0000-7000-8000-000000000001', sid: 'session-1', roles: ['user'] };

interface KeyFileJson {
  version: 1;
  keys: { kid: string; createdAt: string; retiredAt: string | null; privateJwk: JWK; publicJwk: JWK }[];
}

let dir: string;
let file: string;
let clock: number;
const logs = capturingLogger('auth-test');

const open = (overrides: Partial<OpenKeyRingOptions> = {}) =>
  openKeyRing({
    file,
    rotationDays: 30,
    accessTokenTtlSeconds: TTL,
    issuer: ISSUER,
    audience: AUDIENCE,
    now: () => new Date(clock),
    logger: logs.logger,
    ...overrides,
  });

const verifierFor = (ring: KeyRing) =>
  createLocalVerifier({ issuer: ISSUER, audience: AUDIENCE, keys: () => ring.jwks() });

const readKeyFile = () => JSON.parse(readFileSync(file, 'utf8')) as KeyFileJson;
const modeOf = (path: string) => statSync(path).mode & 0o777;

async function rejection(promise: Promise<unknown>): Promise<RejectionReason> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTokenError);
    return (error as InvalidTokenError).reason;
  }
  throw new Error('token was accepted');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'aiva-keys-'));
  file = join(dir, 'nested', 'keys', 'signing-keys.json');
  clock = Date.now();
  logs.clear();
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('key ring', () => {
  it('creates the directory (0700) and the file (0600) with one current key', async () => {
    const ring = await open();
    expect(modeOf(join(dir, 'nested', 'keys'))).toBe(0o700);
    expect(modeOf(file)).toBe(0o600);
    const stored = readKeyFile();
    expect(stored.version).toBe(1);
    expect(stored.keys).toHaveLength(1);
    const [key] = stored.keys;
    expect(key?.retiredAt).toBeNull();
    expect(key?.kid).toBe(ring.currentKid());
    expect(key?.kid).toBe(await calculateJwkThumbprint(key!.publicJwk));
    expect(key?.privateJwk.d).toEqual(expect.any(String));
    // No temp files left behind.
    expect(readdirSync(join(dir, 'nested', 'keys'))).toEqual(['signing-keys.json']);
  });

  it('signs access tokens the shared verifier accepts', async () => {
    const ring = await open();
    const { token, expiresIn } = await ring.sign(CLAIMS);
    expect(expiresIn).toBe(TTL);
    const viewer = await verifierFor(ring).inspect(token);
    expect(viewer).toEqual({ userId: CLAIMS.sub, sessionId: CLAIMS.sid, roles: ['user'], kind: 'user' });

    const header = decodeProtectedHeader(token);
    expect(header).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: ring.currentKid() });
    const payload = decodeJwt(token);
    expect(payload).toMatchObject({
      sub: CLAIMS.sub,
      sid: CLAIMS.sid,
      roles: ['user'],
      iss: ISSUER,
      aud: AUDIENCE,
    });
    expect(payload.exp! - payload.iat!).toBe(TTL);
    expect(payload.iat).toBe(Math.floor(clock / 1000));
    expect(payload.jti).toEqual(expect.any(String));
    expect(decodeJwt((await ring.sign(CLAIMS)).token).jti).not.toBe(payload.jti);
  });

  it('accepts a shorter TTL and caps a longer one at accessTokenTtlSeconds', async () => {
    const ring = await open();
    const { token, expiresIn } = await ring.sign(CLAIMS, 60);
    expect(expiresIn).toBe(60);
    const payload = decodeJwt(token);
    expect(payload.exp! - payload.iat!).toBe(60);
    const long = await ring.sign(CLAIMS, TTL * 10);
    expect(long.expiresIn).toBe(TTL);
    const longPayload = decodeJwt(long.token);
    expect(longPayload.exp! - longPayload.iat!).toBe(TTL);
    await expect(ring.sign(CLAIMS, 0)).rejects.toThrow(RangeError);
    await expect(ring.sign(CLAIMS, 1.5)).rejects.toThrow(RangeError);
  });

  it('publishes public keys only', async () => {
    const ring = await open();
    const { keys } = ring.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: expect.any(String),
      kid: ring.currentKid(),
      alg: 'EdDSA',
      use: 'sig',
    });
    expect(keys[0]).not.toHaveProperty('d');
    expect(JSON.stringify(ring.jwks())).not.toContain(readKeyFile().keys[0]!.privateJwk.d!);
  });

  it('never logs private keys', async () => {
    const ring = await open();
    await ring.rotate();
    await ring.sign(CLAIMS);
    expect(logs.lines.length).toBeGreaterThan(0);
    const logged = logs.text();
    for (const key of readKeyFile().keys) expect(logged).not.toContain(key.privateJwk.d!);
  });

  it('keeps its key across a restart: tokens issued before still verify', async () => {
    const first = await open();
    const { token } = await first.sign(CLAIMS);
    const before = readFileSync(file, 'utf8');
    const second = await open();
    expect(second.currentKid()).toBe(first.currentKid());
    expect(readFileSync(file, 'utf8')).toBe(before);
    await expect(verifierFor(second).inspect(token)).resolves.toMatchObject({ userId: CLAIMS.sub });
  });

  it('fixes a file readable by group/other to 0600 and warns', async () => {
    await open();
    chmodSync(file, 0o644);
    logs.clear();
    await open();
    expect(modeOf(file)).toBe(0o600);
    expect(logs.text()).toMatch(/"level":40.*mode was changed to 0600/);
  });

  it('refuses a corrupt file instead of replacing its keys', async () => {
    await open();
    writeFileSync(file, '{"version":1,"keys":[{"kid":"x"}]', { mode: 0o600 });
    await expect(open()).rejects.toThrow(/not valid JSON/);
    const stored = { version: 1, keys: [{ kid: 'x' }] };
    writeFileSync(file, JSON.stringify(stored), { mode: 0o600 });
    await expect(open()).rejects.toThrow(/invalid/);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(stored);
  });

  it('refuses a key whose kid is not its thumbprint', async () => {
    await open();
    const stored = readKeyFile();
    stored.keys[0]!.kid = 'forged';
    writeFileSync(file, JSON.stringify(stored), { mode: 0o600 });
    await expect(open()).rejects.toThrow(/thumbprint/);
  });
});

describe('rotation', () => {
  it('rotates without signing anyone out, then drops the old key after ttl + 60 s', async () => {
    const ring = await open();
    const verifier = verifierFor(ring);
    const oldKid = ring.currentKid();
    const { token: oldToken } = await ring.sign(CLAIMS);

    clock += 1000;
    await ring.rotate();
    const newKid = ring.currentKid();
    expect(newKid).not.toBe(oldKid);
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    await expect(verifier.inspect(oldToken)).resolves.toMatchObject({ userId: CLAIMS.sub });

    const { token: newToken } = await ring.sign(CLAIMS);
    expect(decodeProtectedHeader(newToken).kid).toBe(newKid);
    await expect(verifier.inspect(newToken)).resolves.toMatchObject({ userId: CLAIMS.sub });

    const stored = readKeyFile();
    expect(stored.keys.map((k) => [k.kid, k.retiredAt])).toEqual([
      [newKid, null],
      [oldKid, new Date(clock).toISOString()],
    ]);
    expect(modeOf(file)).toBe(0o600);

    // A restart in between keeps the retired key published.
    const restarted = await open();
    expect(restarted.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    await expect(verifierFor(restarted).inspect(oldToken)).resolves.toBeDefined();

    // Just before the grace period ends: still there.
    const retiredAt = clock;
    clock = retiredAt + (TTL + 60) * 1000 - 1;
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    await expect(verifier.inspect(oldToken)).resolves.toBeDefined();

    // After ttl + 60 s: gone from the JWKS, and from the file at the next rotateIfDue.
    clock = retiredAt + (TTL + 60) * 1000;
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([newKid]);
    expect(await rejection(verifier.inspect(oldToken))).toBe('unknown_key');
    await expect(verifier.inspect(newToken)).resolves.toBeDefined();
    expect(await ring.rotateIfDue()).toBe(false);
    expect(readKeyFile().keys.map((k) => k.kid)).toEqual([newKid]);
    expect(ring.currentKid()).toBe(newKid);
  });

  it('drops expired retired keys from the file when it is opened', async () => {
    const ring = await open();
    await ring.rotate();
    expect(readKeyFile().keys).toHaveLength(2);
    clock += (TTL + 61) * 1000;
    const reopened = await open();
    expect(readKeyFile().keys.map((k) => k.kid)).toEqual([reopened.currentKid()]);
  });

  it('keeps several retired keys after quick successive rotations', async () => {
    const ring = await open();
    const tokens = [];
    for (let i = 0; i < 3; i++) {
      tokens.push((await ring.sign(CLAIMS)).token);
      await ring.rotate();
    }
    expect(ring.jwks().keys).toHaveLength(4);
    expect(new Set(ring.jwks().keys.map((k) => k.kid)).size).toBe(4);
    for (const token of tokens) await expect(verifierFor(ring).inspect(token)).resolves.toBeDefined();
  });

  it('serializes concurrent rotations', async () => {
    const ring = await open();
    await Promise.all([ring.rotate(), ring.rotate(), ring.rotateIfDue(), ring.rotate()]);
    const stored = readKeyFile();
    expect(stored.keys).toHaveLength(4);
    expect(stored.keys.filter((k) => k.retiredAt === null).map((k) => k.kid)).toEqual([ring.currentKid()]);
  });

  it('rotateIfDue rotates once the current key is older than rotationDays', async () => {
    const ring = await open({ rotationDays: 7 });
    const first = ring.currentKid();
    expect(await ring.rotateIfDue()).toBe(false);

    clock += 7 * DAY_MS - 1000;
    expect(await ring.rotateIfDue()).toBe(false);
    expect(ring.currentKid()).toBe(first);

    clock += 1000;
    expect(await ring.rotateIfDue()).toBe(true);
    const second = ring.currentKid();
    expect(second).not.toBe(first);
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([second, first]);
    expect(await ring.rotateIfDue()).toBe(false);
  });

  it('rotates a key that became due while the service was down, at open', async () => {
    const first = (await open({ rotationDays: 1 })).currentKid();
    clock += 2 * DAY_MS;
    const reopened = await open({ rotationDays: 1 });
    expect(reopened.currentKid()).not.toBe(first);
    expect(reopened.jwks().keys.map((k) => k.kid)).toEqual([reopened.currentKid(), first]);
  });
});

describe('attacks, through the shared verifier', () => {
  let ring: KeyRing;
  let privateKey: CryptoKey | Uint8Array;
  let publicJwk: JWK;
  let kid: string;
  const now = () => Math.floor(Date.now() / 1000);
  const goodClaims = (): JWTPayload => ({
    ...CLAIMS,
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now(),
    exp: now() + 600,
  });
  const signWithRingKey = (payload: JWTPayload, header: Record<string, unknown>) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'EdDSA', ...header }).sign(privateKey);
  const inspect = (token: string) => rejection(verifierFor(ring).inspect(token));

  beforeEach(async () => {
    ring = await open();
    const stored = readKeyFile().keys[0]!;
    privateKey = await importJWK(stored.privateJwk, 'EdDSA');
    publicJwk = stored.publicJwk;
    kid = stored.kid;
    // The crafting key is the ring's own: these tokens fail on the checks, not on the signature.
    await expect(
      verifierFor(ring).inspect(await signWithRingKey(goodClaims(), { typ: 'at+jwt', kid })),
    ).resolves.toBeDefined();
  });

  it('alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }));
    const payload = base64url.encode(JSON.stringify(goodClaims()));
    expect(await inspect(`${header}.${payload}.`)).toBe('algorithm');
    const withKid = base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid }));
    expect(await inspect(`${withKid}.${payload}.`)).toBe('algorithm');
  });

  it('HS256 keyed with the public key (algorithm confusion)', async () => {
    const secrets = [
      new TextEncoder().encode(JSON.stringify(publicJwk)),
      new TextEncoder().encode(JSON.stringify(ring.jwks().keys[0])),
      base64url.decode(publicJwk.x!),
      new TextEncoder().encode(publicJwk.x!),
    ];
    for (const secret of secrets) {
      const token = await new SignJWT(goodClaims())
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
        .sign(secret);
      expect(await inspect(token)).toBe('algorithm');
    }
  });

  it('wrong issuer', async () => {
    expect(
      await inspect(await signWithRingKey({ ...goodClaims(), iss: 'evil' }, { typ: 'at+jwt', kid })),
    ).toBe('claims');
  });

  it('wrong audience', async () => {
    expect(
      await inspect(await signWithRingKey({ ...goodClaims(), aud: 'other' }, { typ: 'at+jwt', kid })),
    ).toBe('claims');
  });

  it('expired', async () => {
    const expired = { ...goodClaims(), iat: now() - 1000, exp: now() - 120 };
    expect(await inspect(await signWithRingKey(expired, { typ: 'at+jwt', kid }))).toBe('expired');
  });

  it('expired, signed by the ring with an earlier clock', async () => {
    const realNow = Date.now();
    clock = realNow - (TTL + 120) * 1000;
    const { token } = await ring.sign(CLAIMS);
    clock = realNow;
    expect(await inspect(token)).toBe('expired');
  });

  it('missing typ, or typ JWT', async () => {
    expect(await inspect(await signWithRingKey(goodClaims(), { kid }))).toBe('claims');
    expect(await inspect(await signWithRingKey(goodClaims(), { typ: 'JWT', kid }))).toBe('claims');
  });

  it('missing sid', async () => {
    const { sid: _sid, ...claims } = goodClaims();
    expect(await inspect(await signWithRingKey(claims, { typ: 'at+jwt', kid }))).toBe('claims');
  });

  it('tampered payload', async () => {
    const { token } = await ring.sign(CLAIMS);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const i = Math.floor(payload.length / 2);
    const swapped = payload[i] === 'A' ? 'B' : 'A';
    const oneChar = `${payload.slice(0, i)}${swapped}${payload.slice(i + 1)}`;
    expect(await inspect(`${header}.${oneChar}.${signature}`)).toBe('signature');

    const escalated = base64url.encode(JSON.stringify({ ...decodeJwt(token), roles: ['user', 'admin'] }));
    expect(await inspect(`${header}.${escalated}.${signature}`)).toBe('signature');
  });

  it('another key: unknown kid, the ring kid, or an embedded jwk', async () => {
    const other = await generateKeyPair('EdDSA', { extractable: true });
    const otherJwk = await exportJWK(other.publicKey);
    const otherKid = await calculateJwkThumbprint(otherJwk);
    const signOther = (header: Record<string, unknown>) =>
      new SignJWT(goodClaims())
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...header })
        .sign(other.privateKey);

    expect(await inspect(await signOther({ kid: otherKid }))).toBe('unknown_key');
    expect(await inspect(await signOther({ kid: otherKid, jwk: otherJwk }))).toBe('unknown_key');
    expect(await inspect(await signOther({ kid }))).toBe('signature');
  });
});
