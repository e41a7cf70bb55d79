import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';

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
        config: { secret: 'shh', token: 'tok-4471' },
      },
      'signing in',
    );
    await new Promise((resolve) => setImmediate(resolve));
    const text = lines.join('\n');
    for (const secret of ['abc.def.ghi', 'hunter22', 'nested-pass', 'rt-123', 'xyz', 'shh', 'tok-4471']) {
      expect(text).not.toContain(secret);
    }
    const line = JSON.parse(lines[0] ?? '{}');
    expect(line.input.email).toBe('a@b.test');
    expect(line.password).toBe('[redacted]');
    expect(line.service).toBe('test');
  });
});
