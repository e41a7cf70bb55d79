/**
 * Set by the orchestrator's supervisor on every process it starts: the process's stdin is a pipe from the
 * supervisor, which the operating system closes when the supervisor dies, however it dies (even SIGKILL).
 */
export const SUPERVISED_ENV = 'AIVA_SUPERVISED';

type Stdin = NodeJS.ReadableStream & { unref?: () => void };

/** What to do when the parent is gone, per watched stdin (the latest call wins). */
const actions = new WeakMap<Stdin, { run: () => void; fired: boolean }>();

/**
 * Calls `onParentGone` once when the supervising orchestrator is gone, so a service never outlives it.
 * Only under the supervisor (`AIVA_SUPERVISED=1`): it reads stdin until the pipe ends, which happens when the
 * orchestrator exits or is killed. Elsewhere (a terminal, `pnpm --filter @aiva/users start`, a container)
 * it does nothing and returns false.
 *
 * Call it first thing in an entry point (`exitWithParent(() => process.exit(1))`: a process that is still
 * starting has nothing to clean up), so that even a service stuck at start does not outlive its supervisor;
 * a later call replaces the action — `onShutdownSignal` makes it the graceful stop once the service runs.
 * stdin does not keep the process alive on its own.
 */
export function exitWithParent(
  onParentGone: () => void,
  env: Record<string, string | undefined> = process.env,
  stdin: Stdin = process.stdin,
): boolean {
  if (env[SUPERVISED_ENV] !== '1') return false;
  const known = actions.get(stdin);
  if (known) {
    known.run = onParentGone;
    return true;
  }
  const action = { run: onParentGone, fired: false };
  actions.set(stdin, action);
  const parentGone = () => {
    if (action.fired) return;
    action.fired = true;
    action.run();
  };
  stdin.on('end', parentGone);
  stdin.on('close', parentGone);
  // A broken pipe is the parent going away too.
  stdin.on('error', parentGone);
  // The supervisor writes nothing: whatever arrives is discarded, only the end matters.
  stdin.on('data', () => {});
  stdin.resume();
  stdin.unref?.();
  return true;
}
