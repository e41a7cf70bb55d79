/**
 * Set by the orchestrator's supervisor on every process it starts: the process's stdin is a pipe from the
 * supervisor, which the operating system closes when the supervisor dies, however it dies (even SIGKILL).
 */
export const SUPERVISED_ENV = 'AIVA_SUPERVISED';

/**
 * Calls `onParentGone` once when the supervising orchestrator is gone, so a service never outlives it.
 * Only under the supervisor (`AIVA_SUPERVISED=1`): it reads stdin until the pipe ends, which happens when the
 * orchestrator exits or is killed. Elsewhere (a terminal, `pnpm --filter @aiva/users start`, a container)
 * it does nothing and returns false.
 *
 * The usual callback stops the service the way a signal would: `exitWithParent(() => process.kill(process.pid,
 * 'SIGTERM'))` after `onShutdownSignal(...)`. stdin does not keep the process alive on its own.
 */
export function exitWithParent(
  onParentGone: () => void,
  env: Record<string, string | undefined> = process.env,
  stdin: NodeJS.ReadableStream & { unref?: () => void } = process.stdin,
): boolean {
  if (env[SUPERVISED_ENV] !== '1') return false;
  let gone = false;
  const parentGone = () => {
    if (gone) return;
    gone = true;
    onParentGone();
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
