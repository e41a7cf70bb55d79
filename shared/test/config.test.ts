import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, commonEnvSchema, env, loadConfig } from '../src/config.js';

const schema = commonEnvSchema.extend({ USERS_PORT: env.port(3001), API_KEY: z.string().min(10) });

describe('loadConfig', () => {
  it('applies defaults and coerces numbers', () => {
    const config = loadConfig(schema, { API_KEY: 'k'.repeat(12), USERS_PORT: '4001' });
    expect(config.USERS_PORT).toBe(4001);
    expect(config.HOST).toBe('127.0.0.1');
    expect(config.DATA_DIR).toBe('.data');
    expect(config.NATS_URL).toBeUndefined();
  });

  it('names a missing variable', () => {
    expect(() => loadConfig(schema, {})).toThrowError(/API_KEY: is required/);
  });

  it('names every invalid variable without echoing secret values', () => {
    let error: unknown;
    try {
      loadConfig(schema, { API_KEY: 'short-secret', USERS_PORT: 'eighty', REDIS_URL: 'http://x' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toMatch(/USERS_PORT/);
    expect(message).toMatch(/REDIS_URL: must be a URL starting with redis:\/\/ or rediss:\/\//);
    expect((error as ConfigError).problems).toHaveLength(2);
    expect(message).not.toContain('short-secret');
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig(schema, { API_KEY: 'k'.repeat(12), NATS_URL: '', USERS_PORT: ' ' });
    expect(config.NATS_URL).toBeUndefined();
    expect(config.USERS_PORT).toBe(3001);
  });

  it('parses comma lists', () => {
    const listSchema = z.object({ CORS_ORIGINS: env.list('') });
    expect(loadConfig(listSchema, { CORS_ORIGINS: 'https://a.test, https://b.test,' }).CORS_ORIGINS).toEqual([
      'https://a.test',
      'https://b.test',
    ]);
    expect(loadConfig(listSchema, {}).CORS_ORIGINS).toEqual([]);
  });
});
