import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { commonEnvSchema, loadConfig } from '../src/config.js';
import { eventCatalog, sealed } from '../src/events/catalog.js';
import { createEvent } from '../src/events/event.js';
import {
  generateSealingKey,
  isSealed,
  loadSealingKeys,
  openSealed,
  parseSealingKeys,
  SealingError,
  seal,
  sealingEnvSchema,
  sealingKeys,
  sealingKeysFile,
} from '../src/events/sealing.js';

const dir = mkdtempSync(join(tmpdir(), 'aiva-sealing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshFile = () => join(dir, `run-${++n}`, 'event-sealing-keys.json');

const keyText = (bytes = 32) => randomBytes(bytes).toString('base64url');
const TOKEN = randomBytes(32).toString('base64url');

describe('seal / openSealed', () => {
  const keys = sealingKeys([generateSealingKey()]);

  it('round-trips, naming the key id, with a fresh nonce every time', () => {
    const a = seal(TOKEN, keys);
    const b = seal(TOKEN, keys);
    expect(a).toMatch(new RegExp(`^sealed:v1:${keys.current.kid}:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$`));
    expect(a).not.toBe(b);
    expect(a).not.toContain(TOKEN);
    expect(isSealed(a)).toBe(true);
    expect(openSealed(a, keys)).toBe(TOKEN);
    expect(openSealed(b, keys)).toBe(TOKEN);
  });

  it('refuses a tampered value, another key, an unknown key id and plaintext, without echoing the value', () => {
    const value = seal(TOKEN, keys);
    const parts = value.split(':');
    const body = Buffer.from(parts[4]!, 'base64url');
    body[0] = body[0]! ^ 1;
    const tampered = [...parts.slice(0, 4), body.toString('base64url')].join(':');
    expect(() => openSealed(tampered, keys)).toThrow(SealingError);

    const other = sealingKeys([{ kid: keys.current.kid, key: randomBytes(32) }]);
    expect(() => openSealed(value, other)).toThrow(/authentication failed/);

    // The key id is authenticated: moving the value to another id fails even where that id has the same key.
    const renamed = sealingKeys([{ kid: 'other', key: keys.current.key }]);
    expect(() => openSealed(value.replace(`:${keys.current.kid}:`, ':other:'), renamed)).toThrow(
      SealingError,
    );

    expect(() => openSealed(value, sealingKeys([generateSealingKey()]))).toThrow(/unknown key id/);
    for (const plain of [TOKEN, 'sealed:v1:x', '']) {
      let message = '';
      try {
        openSealed(plain, keys);
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/not a sealed value/);
      if (plain) expect(message).not.toContain(plain);
    }
  });

  it('opens values sealed with an older key while a newer one seals', () => {
    const old = generateSealingKey();
    const before = seal(TOKEN, sealingKeys([old]));
    const rotated = sealingKeys([generateSealingKey(), old]);
    expect(openSealed(before, rotated)).toBe(TOKEN);
    expect(seal(TOKEN, rotated)).toContain(`:${rotated.current.kid}:`);
  });

  it('refuses bad key rings', () => {
    expect(() => sealingKeys([])).toThrow(/at least one/);
    expect(() => sealingKeys([{ kid: 'a:b', key: randomBytes(32) }])).toThrow(/key id/);
    expect(() => sealingKeys([{ kid: 'short', key: randomBytes(16) }])).toThrow(/32 bytes/);
    const key = generateSealingKey();
    expect(() => sealingKeys([key, key])).toThrow(/used twice/);
  });
});

describe('EVENT_SEALING_KEYS', () => {
  it('parses <kid>:<key> lists, the first sealing', () => {
    const keys = parseSealingKeys(` k2:${keyText()} , k1:${keyText()}`);
    expect(keys.current.kid).toBe('k2');
    expect([...keys.all.keys()]).toEqual(['k2', 'k1']);
  });

  it('is validated by the config schema without echoing the value', () => {
    const schema = commonEnvSchema.extend(sealingEnvSchema.shape);
    const secret = keyText(16);
    expect(() => loadConfig(schema, { EVENT_SEALING_KEYS: `k1:${secret}` })).toThrow(
      /EVENT_SEALING_KEYS: entry 1 \(k1\) is not a 32-byte key/,
    );
    try {
      loadConfig(schema, { EVENT_SEALING_KEYS: `k1:${secret}` });
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
    }
    expect(() => loadConfig(schema, { EVENT_SEALING_KEYS: 'no-colon' })).toThrow(/not <kid>:<base64url key>/);
    const ok = loadConfig(schema, { EVENT_SEALING_KEYS: `k1:${keyText()}`, DATA_DIR: '/srv/data' });
    expect(ok.EVENT_SEALING_KEYS).toMatch(/^k1:/);
    expect(sealingKeysFile(ok)).toBe('/srv/data/event-sealing-keys.json');
    expect(sealingKeysFile({ ...ok, EVENT_SEALING_KEYS_FILE: '/x/keys.json' })).toBe('/x/keys.json');
  });

  it('takes precedence over the keys file', async () => {
    const file = freshFile();
    const keys = await loadSealingKeys({ keys: `env:${keyText()}`, file });
    expect(keys.current.kid).toBe('env');
    expect(() => statSync(file)).toThrow();
  });
});

describe('the sealing keys file', () => {
  it('is created on first start with mode 0600, and read back by every process', async () => {
    const file = freshFile();
    const first = await loadSealingKeys({ file });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await loadSealingKeys({ file });
    expect(again.current.kid).toBe(first.current.kid);
    expect(openSealed(seal(TOKEN, first), again)).toBe(TOKEN);
    const json = JSON.parse(readFileSync(file, 'utf8')) as { version: number; keys: Array<{ kid: string }> };
    expect(json.version).toBe(1);
    expect(json.keys.map((k) => k.kid)).toEqual([first.current.kid]);
  });

  it('ends up with one key when several processes create it at once', async () => {
    const file = freshFile();
    const loaded = await Promise.all(Array.from({ length: 8 }, () => loadSealingKeys({ file })));
    expect(new Set(loaded.map((k) => k.current.kid)).size).toBe(1);
  });

  it('tightens a group/other-readable file to 0600, and refuses a broken or missing one', async () => {
    const file = freshFile();
    await loadSealingKeys({ file });
    chmodSync(file, 0o644);
    await loadSealingKeys({ file });
    expect(statSync(file).mode & 0o777).toBe(0o600);

    writeFileSync(file, '{"version":1,"keys":[]}', { mode: 0o600 });
    await expect(loadSealingKeys({ file })).rejects.toThrow(/is invalid/);
    writeFileSync(file, 'not json', { mode: 0o600 });
    await expect(loadSealingKeys({ file })).rejects.toThrow(/not valid JSON/);
    await expect(loadSealingKeys({ file: freshFile(), create: false })).rejects.toThrow(/does not exist/);
  });
});

describe('sealed fields in the catalog', () => {
  const keys = sealingKeys([generateSealingKey()]);
  const data = {
    userId: '01890000-0000-7000-8000-000000000001',
    email: 'someone@example.test',
    expiresAt: new Date().toISOString(),
  };

  it('accepts sealed tokens and refuses plaintext ones in every token event', () => {
    const token = seal(TOKEN, keys);
    expect(createEvent('aiva.auth.password_reset.requested.v1', 'auth', { ...data, token }).data.token).toBe(
      token,
    );
    expect(() =>
      createEvent('aiva.auth.password_reset.requested.v1', 'auth', { ...data, token: TOKEN }),
    ).toThrow();
    expect(() =>
      createEvent('aiva.auth.email_verification.requested.v1', 'auth', { ...data, token: TOKEN }),
    ).toThrow();
    expect(() =>
      createEvent('aiva.auth.email_change.requested.v1', 'auth', {
        ...data,
        previousEmail: 'before@example.test',
        token: TOKEN,
      }),
    ).toThrow();
    expect(
      eventCatalog['aiva.auth.email_change.requested.v1'].safeParse({
        ...data,
        previousEmail: 'before@example.test',
        token,
      }).success,
    ).toBe(true);
  });

  it('offers sealed() for new schemas', () => {
    const schema = z.object({ secret: sealed() });
    expect(schema.safeParse({ secret: seal('x', keys) }).success).toBe(true);
    expect(schema.safeParse({ secret: 'x' }).success).toBe(false);
  });
});
