import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, LazyChildLogger } from '../src/log.js';

function capture() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().trim().split('\n')));
  return { stream, lines };
}

describe('createLogger', () => {
  it('redacts secret fields at the top level and nested', async () => {
    const { stream, lines } = capture();
    const logger = createLogger('test', { destination: stream });
    logger.info(
      {
        authorization: 'Bearer abc.def.ghi',
        password: 'hunter22',
        input: { password: 'nested-pass', email: 'a@b.test', refreshToken: 'rt-123' },
        req: { headers: { authorization: 'Bearer xyz' } },
        config: { secret: 'shh', token: 'tok-4471', SERVICE_SECRET: 'svc-secret-1' },
        SERVICE_CREDENTIAL: 'svc-cred-2',
        body: { client_secret: 'client-3', access_token: 'at-4' },
      },
      'signing in',
    );
    await new Promise((resolve) => setImmediate(resolve));
    const text = lines.join('\n');
    const secrets = ['abc.def.ghi', 'hunter22', 'nested-pass', 'rt-123', 'xyz', 'shh', 'tok-4471'];
    for (const secret of [...secrets, 'svc-secret-1', 'svc-cred-2', 'client-3', 'at-4']) {
      expect(text).not.toContain(secret);
    }
    const line = JSON.parse(lines[0] ?? '{}');
    expect(line.input.email).toBe('a@b.test');
    expect(line.password).toBe('[redacted]');
    expect(line.service).toBe('test');
  });
});

describe('LazyChildLogger', () => {
  it('makes no child while nothing is logged, then logs with its bindings, redacted', async () => {
    const { stream, lines } = capture();
    const parent = createLogger('test', { destination: stream, level: 'info' });
    let children = 0;
    const child = parent.child.bind(parent);
    parent.child = ((...args: Parameters<typeof child>) => {
      children++;
      return child(...args);
    }) as typeof parent.child;
    const lazy = new LazyChildLogger(parent, { reqId: 'req-1' });
    lazy.debug('below the level');
    expect(children).toBe(0);
    lazy.warn({ password: 'hunter22' }, 'request failed');
    lazy.info('again');
    expect(children).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    const [first, second] = lines.map((line) => JSON.parse(line));
    expect(first).toMatchObject({ reqId: 'req-1', msg: 'request failed', password: '[redacted]' });
    expect(second).toMatchObject({ reqId: 'req-1', msg: 'again' });
    expect(lines).toHaveLength(2);
  });
});
