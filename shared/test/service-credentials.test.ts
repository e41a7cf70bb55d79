import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  isServiceName,
  loadServiceSecret,
  SERVICE_SECRET_FILE,
  serviceCredential,
  serviceCredentialOf,
  serviceSecretFile,
  verifyServiceCredential,
} from '../src/auth/service-credentials.js';
import { ConfigError, commonEnvSchema, loadConfig } from '../src/config.js';
import { registryToken } from '../src/discovery/protocol.js';

const root = mkdtempSync(join(tmpdir(), 'aiva-service-credentials-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A data directory that does not exist yet (created by the first load). */
const freshDataDir = () => join(root, `run-${++n}`, 'data');

const SECRET = randomBytes(32).toString('base64url');

describe('serviceCredential / verifyServiceCredential', () => {
  it('derives a base64url HMAC that differs per service, per secret, and from the registry token', () => {
    const ai = serviceCredential(SECRET, 'ai');
    expect(ai).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(serviceCredential(SECRET, 'ai')).toBe(ai);
    expect(serviceCredential(SECRET, 'media')).not.toBe(ai);
    expect(serviceCredential(randomBytes(32).toString('base64url'), 'ai')).not.toBe(ai);
    expect(registryToken(SECRET, 'ai')).not.toBe(ai);
  });

  it("accepts the service's own credential only", () => {
    const ai = serviceCredential(SECRET, 'ai');
    expect(verifyServiceCredential(SECRET, 'ai', ai)).toBe(true);
    // Another service's, a registry token, a wrong one of the same length, a shorter one, an empty one.
    expect(verifyServiceCredential(SECRET, 'media', ai)).toBe(false);
    expect(verifyServiceCredential(SECRET, 'ai', serviceCredential(SECRET, 'media'))).toBe(false);
    expect(verifyServiceCredential(SECRET, 'ai', registryToken(SECRET, 'ai'))).toBe(false);
    const flipped = `${ai.slice(0, -1)}${ai.endsWith('A') ? 'B' : 'A'}`;
    expect(verifyServiceCredential(SECRET, 'ai', flipped)).toBe(false);
    expect(verifyServiceCredential(SECRET, 'ai', ai.slice(0, 20))).toBe(false);
    expect(verifyServiceCredential(SECRET, 'ai', `${ai}x`)).toBe(false);
    expect(verifyServiceCredential(SECRET, 'ai', '')).toBe(false);
    // Multi-byte characters: the same string length, another byte length.
    expect(verifyServiceCredential(SECRET, 'ai', `é${ai.slice(1)}`)).toBe(false);
    // Under another secret.
    expect(verifyServiceCredential(randomBytes(32).toString('base64url'), 'ai', ai)).toBe(false);
  });

  it('knows service names only', () => {
    expect(isServiceName('ai')).toBe(true);
    expect(isServiceName('media-2')).toBe(true);
    for (const bad of ['', 'AI', '1ai', 'ai:media', 'a'.repeat(64), 'ai\n', 'service:ai']) {
      expect(isServiceName(bad)).toBe(false);
      expect(verifyServiceCredential(SECRET, bad, serviceCredential(SECRET, 'ai'))).toBe(false);
      expect(() => serviceCredential(SECRET, bad)).toThrow(RangeError);
    }
  });
});

describe('loadServiceSecret', () => {
  it('uses SERVICE_SECRET when set, refusing one shorter than 32 characters without echoing it', async () => {
    const dataDir = freshDataDir();
    await expect(loadServiceSecret({ SERVICE_SECRET: SECRET, DATA_DIR: dataDir })).resolves.toBe(SECRET);
    // No machine file was made.
    expect(() => statSync(join(dataDir, SERVICE_SECRET_FILE))).toThrow();
    const short = 'too-short-secret-value';
    const refusal = await loadServiceSecret({ SERVICE_SECRET: short, DATA_DIR: dataDir }).catch((e) => e);
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as Error).message).toContain('SERVICE_SECRET');
    expect((refusal as Error).message).not.toContain(short);
  });

  it("creates the machine's file once (0600 in a 0700 directory) and reads it afterwards", async () => {
    const dataDir = freshDataDir();
    const first = await loadServiceSecret({ DATA_DIR: dataDir });
    expect(first.length).toBeGreaterThanOrEqual(32);
    const file = serviceSecretFile({ DATA_DIR: dataDir });
    expect(file).toBe(join(dataDir, 'service-secret.json'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const content = readFileSync(file, 'utf8');
    expect(JSON.parse(content)).toMatchObject({ version: 1, secret: first });
    await expect(loadServiceSecret({ DATA_DIR: dataDir })).resolves.toBe(first);
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it('gives processes racing to create the file the same secret', async () => {
    const dataDir = freshDataDir();
    const secrets = await Promise.all(
      Array.from({ length: 8 }, () => loadServiceSecret({ DATA_DIR: dataDir })),
    );
    expect(new Set(secrets).size).toBe(1);
    expect(JSON.parse(readFileSync(serviceSecretFile({ DATA_DIR: dataDir }), 'utf8')).secret).toBe(
      secrets[0],
    );
  });

  it('gives separate processes racing to create the file the same secret', async () => {
    const dataDir = freshDataDir();
    const moduleUrl = new URL('../src/auth/service-credentials.ts', import.meta.url).href;
    const script = `const m = await import(${JSON.stringify(moduleUrl)}); console.log(await m.loadServiceSecret({ DATA_DIR: process.argv[1] }));`;
    const run = () =>
      promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, dataDir],
        {
          cwd: fileURLToPath(new URL('../../', import.meta.url)),
          timeout: 45_000,
        },
      );
    const outputs = await Promise.all(Array.from({ length: 4 }, run));
    const secrets = outputs.map((output) => output.stdout.trim());
    expect(secrets[0]?.length).toBeGreaterThanOrEqual(32);
    expect(new Set(secrets).size).toBe(1);
    await expect(loadServiceSecret({ DATA_DIR: dataDir })).resolves.toBe(secrets[0]);
  });

  it('refuses a damaged file without showing its content', async () => {
    const dataDir = freshDataDir();
    await loadServiceSecret({ DATA_DIR: dataDir });
    const file = serviceSecretFile({ DATA_DIR: dataDir });
    writeFileSync(file, JSON.stringify({ version: 1, secret: 'short-secret-xyz' }), { mode: 0o600 });
    const error = (await loadServiceSecret({ DATA_DIR: dataDir }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain('service secret file');
    expect(error.message).not.toContain('short-secret-xyz');
  });
});

describe('serviceCredentialOf', () => {
  it('takes SERVICE_CREDENTIAL first, then SERVICE_SECRET, then the machine file', async () => {
    const dataDir = freshDataDir();
    const given = 'given-credential';
    await expect(
      serviceCredentialOf({ SERVICE_CREDENTIAL: given, SERVICE_SECRET: SECRET, DATA_DIR: dataDir }, 'ai'),
    ).resolves.toBe(given);
    await expect(serviceCredentialOf({ SERVICE_SECRET: SECRET, DATA_DIR: dataDir }, 'ai')).resolves.toBe(
      serviceCredential(SECRET, 'ai'),
    );
    // Nothing given: the machine's secret, the same one auth reads (loadServiceSecret) on this DATA_DIR.
    const machine = await serviceCredentialOf({ DATA_DIR: dataDir }, 'ai');
    const machineSecret = await loadServiceSecret({ DATA_DIR: dataDir });
    expect(machine).toBe(serviceCredential(machineSecret, 'ai'));
    expect(verifyServiceCredential(machineSecret, 'ai', machine)).toBe(true);
    expect(await serviceCredentialOf({ DATA_DIR: dataDir }, 'media')).not.toBe(machine);
  });

  it('reads both variables from the common configuration (SERVICE_SECRET at least 32 characters)', async () => {
    const config = loadConfig(commonEnvSchema, {
      DATA_DIR: freshDataDir(),
      SERVICE_CREDENTIAL: 'from-env',
      SERVICE_SECRET: SECRET,
    });
    expect(config.SERVICE_CREDENTIAL).toBe('from-env');
    await expect(serviceCredentialOf(config, 'ai')).resolves.toBe('from-env');
    const short = 'x'.repeat(31);
    let refusal: unknown;
    try {
      loadConfig(commonEnvSchema, { SERVICE_SECRET: short });
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as ConfigError).problems.join('\n')).toContain('SERVICE_SECRET');
    expect((refusal as ConfigError).message).not.toContain(short);
  });
});
