import { afterAll, expect, it } from 'vitest';
import { startRegistry, testConfig, writeProject } from './fixtures/registry-harness.js';

// A file of its own: Fastify warns once per module instance, so an earlier registry in the same file would hide a
// warning from a later one.

const warnings: Error[] = [];
const collect = (warning: Error) => warnings.push(warning);
process.on('warning', collect);
const project = writeProject();
afterAll(() => {
  process.off('warning', collect);
  project.remove();
});

it("starts without Fastify warnings (one error handler, with the store's outage answer in it)", async () => {
  const running = await startRegistry(testConfig(project));
  try {
    const missing = await fetch(`${running.url}/no-such-path`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ errors: [{ extensions: { code: 'NOT_FOUND' } }] });
  } finally {
    await running.close();
  }
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  expect(warnings.map((w) => `${(w as { code?: string }).code ?? w.name}: ${w.message}`)).toEqual([]);
});
