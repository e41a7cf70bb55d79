import { aiProviderEnvSchema, providerRegistryOf } from '../../src/providers/config.js';
import { type AiModels, type ChatStream, createAiModels } from '../../src/providers/models.js';
import type { AttemptEvent } from '../../src/providers/policy.js';

/** Keys the fakes get: long and recognisable, so a test can assert none leaks into a message. */
export const KEYS = {
  openai: 'sk-test-openai-0123456789abcdef',
  google: 'AIzaTestGoogle0123456789',
  huggingface: 'hf_test_0123456789abcdef',
  togetherai: 'tgp_v1_test_0123456789',
  elevenlabs: 'xi-test-0123456789abcdef',
} as const;

/** Policy settings that keep tests quick: short timeout, small budget. */
export const FAST_POLICY = { AI_CALL_TIMEOUT_MS: '1500', AI_MAX_RETRIES: '2', AI_RETRY_BUDGET_MS: '5000' };

/** The models of an environment, with every attempt recorded. */
export function modelsFor(env: Record<string, string>): { models: AiModels; attempts: AttemptEvent[] } {
  const attempts: AttemptEvent[] = [];
  const registry = providerRegistryOf(aiProviderEnvSchema.parse({ ...FAST_POLICY, ...env }));
  return { models: createAiModels(registry, { onAttempt: (event) => attempts.push(event) }), attempts };
}

/** Reads a chat stream to its end: the deltas in order, and the error that ended it, if any. */
export async function readAll(stream: ChatStream): Promise<{ deltas: string[]; error: unknown }> {
  const deltas: string[] = [];
  try {
    for await (const delta of stream) deltas.push(delta);
    return { deltas, error: undefined };
  } catch (error) {
    return { deltas, error };
  }
}

/** A user turn. */
export function ask(text: string) {
  return [{ role: 'user' as const, content: text }];
}
