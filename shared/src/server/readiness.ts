/** A named dependency check for `/ready`: resolves when the dependency answers, throws when it does not. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, 'up' | 'down'>;
}

/** Runs every check in parallel, each bounded by `timeoutMs`. Error details go to `onFailure`, not the report. */
export async function runReadinessChecks(
  checks: readonly ReadinessCheck[],
  options: { timeoutMs?: number; onFailure?: (name: string, error: unknown) => void } = {},
): Promise<ReadinessReport> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          check(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
          }),
        ]);
        return [name, 'up'] as const;
      } catch (error) {
        options.onFailure?.(name, error);
        return [name, 'down'] as const;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ready: results.every(([, state]) => state === 'up'), checks: Object.fromEntries(results) };
}
