/** Most instances of one service `--scale` may ask for. */
export const MAX_INSTANCES = 16;

/** What `pnpm start` / `pnpm dev` were asked for on the command line. */
export interface StartArgs {
  /** `--scale users=2`: instances per service (only the services named). */
  scale: Record<string, number>;
  /** Positional service names (`pnpm dev users`): the services to run in watch mode. */
  services: string[];
}

/** A command line that cannot be understood; the message names the bad value. */
export class StartArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartArgsError';
  }
}

/**
 * Parses the arguments after the command (`start` / `dev`): `--scale users=2` (repeatable, or comma-separated:
 * `--scale=users=2,auth=2`) and positional service names. Every name must be one of `services` (the
 * manifest's), every count a whole number from 1 to MAX_INSTANCES. A bare `--` (from `pnpm start -- …`) is
 * ignored.
 */
export function parseStartArgs(argv: readonly string[], services: readonly string[]): StartArgs {
  const known = new Set(services);
  const requireKnown = (name: string, where: string) => {
    if (!known.has(name)) {
      throw new StartArgsError(`${where}: unknown service "${name}" (known: ${services.join(', ')})`);
    }
  };
  const scale: Record<string, number> = {};
  const positional: string[] = [];

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--') continue;
    if (arg === '--scale' || arg.startsWith('--scale=')) {
      const value = arg === '--scale' ? argv[++index] : arg.slice('--scale='.length);
      if (value === undefined || value === '' || value.startsWith('--')) {
        throw new StartArgsError('--scale: needs a value like users=2');
      }
      for (const [name, count] of parseScaleValue(value)) {
        requireKnown(name, '--scale');
        if (name in scale) throw new StartArgsError(`--scale: ${name} is given more than once`);
        scale[name] = count;
      }
      continue;
    }
    if (arg.startsWith('-'))
      throw new StartArgsError(`unknown option "${arg}" (expected --scale <service>=<n>)`);
    requireKnown(arg, 'service');
    if (!positional.includes(arg)) positional.push(arg);
  }
  return { scale, services: positional };
}

/** `users=2,auth=3` → [['users', 2], ['auth', 3]]. */
function parseScaleValue(value: string): Array<[string, number]> {
  return value.split(',').map((part) => {
    const match = /^([^=\s]+)=([^=\s]*)$/.exec(part.trim());
    if (!match) throw new StartArgsError(`--scale: "${part}" must look like users=2`);
    const name = match[1]!;
    const text = match[2]!;
    const count = Number(text);
    if (!/^\d+$/.test(text) || count < 1 || count > MAX_INSTANCES) {
      throw new StartArgsError(
        `--scale: ${name}=${text}: the count must be a whole number from 1 to ${MAX_INSTANCES}`,
      );
    }
    return [name, count];
  });
}
