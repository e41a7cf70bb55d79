/**
 * `run`, called at most once per `ttlMs`: callers while a run is in flight share it, and callers within `ttlMs`
 * after it finished get its result. A run that fails is not kept. For answers that are costly to compute and
 * asked for often by anyone (`/ready`, `/metrics`), so asking faster does not make the server work harder.
 */
export function reusedResult<T>(
  ttlMs: number,
  run: () => Promise<T>,
  now: () => number = Date.now,
): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  let last: { value: T; until: number } | undefined;
  return () => {
    if (last && now() < last.until) return Promise.resolve(last.value);
    inFlight ??= run()
      .then((value) => {
        last = { value, until: now() + ttlMs };
        return value;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
}
