/** Exit codes with a meaning worth naming (sysexits.h; AIVA services exit 78 on a bad configuration). */
const EXIT_CODE_MEANINGS: Readonly<Record<number, string>> = {
  0: 'exited by itself',
  78: 'configuration error',
};

/** `exit code 78 (configuration error)`, `killed by SIGKILL`: how a process ended, for people. */
export function describeExit(code: number | null, signal: NodeJS.Signals | string | null): string {
  if (signal) return `killed by ${signal}`;
  if (code === null) return 'ended without an exit code';
  const meaning = EXIT_CODE_MEANINGS[code];
  return meaning ? `exit code ${code} (${meaning})` : `exit code ${code}`;
}

/** How many of the last output lines a crash-loop report quotes. */
export const REPORTED_LINES = 5;

/**
 * Why a process is left down: how often it failed, how it ended the last time, and its last stderr lines
 * (its last output lines when it wrote nothing to stderr, as a pino logger would).
 */
export function crashLoopReason(input: {
  failures: number;
  code: number | null;
  signal: NodeJS.Signals | string | null;
  stderr: readonly string[];
  stdout: readonly string[];
  error?: string | undefined;
}): string {
  const how = input.error ? `cannot start: ${input.error}` : describeExit(input.code, input.signal);
  const head = `crash loop: failed ${input.failures} times in a row, not restarting (last: ${how})`;
  const [label, lines] =
    input.stderr.length > 0 ? ['last stderr', input.stderr] : ['last output', input.stdout];
  const quoted = lines.slice(-REPORTED_LINES).filter((line) => line.trim() !== '');
  return quoted.length > 0 ? `${head}; ${label}:\n${quoted.map((l) => `  ${l}`).join('\n')}` : head;
}
