import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ServiceDefinition } from './manifest.js';

/**
 * How a service runs: `dist` its built entry (`pnpm start`, production), `source` its TypeScript entry through
 * tsx's loader, `watch` its TypeScript entry under `tsx watch`, restarting on changes (`pnpm dev <service>`).
 */
export type RunMode = 'dist' | 'source' | 'watch';

/** A process to spawn: `command args…` in `cwd`. */
export interface ChildCommand {
  command: string;
  args: string[];
  cwd: string;
}

/**
 * Loaded into the `tsx watch` process itself: it ends (as on SIGTERM: stopping its child first) when its stdin
 * pipe from the supervisor closes, so a watcher never outlives a killed orchestrator. The service under it
 * shares the pipe and leaves through `exitWithParent`.
 */
export const WATCHER_EXIT_WITH_PARENT = `data:text/javascript,${encodeURIComponent(
  "process.stdin.on('end',()=>process.kill(process.pid,'SIGTERM')).on('data',()=>{}).resume();process.stdin.unref?.()",
)}`;

/** tsx's command line script (what node_modules/.bin/tsx runs), resolved from the given root. */
export function resolveTsxCli(rootDir: string): string {
  try {
    return createRequire(join(rootDir, 'package.json')).resolve('tsx/cli');
  } catch {
    throw new Error(`watch mode needs tsx, which is not installed under ${rootDir} (run pnpm install)`);
  }
}

/**
 * The command line of a service, run in the manifest's root with paths relative to it:
 * - dist:   `node <nodeOptions> <dir>/<entry>`
 * - source: `node <nodeOptions> --conditions=aiva-source --import tsx <dir>/<source>`
 * - watch:  `tsx watch --conditions=aiva-source --clear-screen=false --include <dir>/<watch file>… <dir>/<source>`
 *   (run as `node <exit-with-parent hook> <tsx cli> watch …`, see WATCHER_EXIT_WITH_PARENT).
 */
export function childCommand(
  service: ServiceDefinition,
  mode: RunMode,
  paths: { rootDir: string; nodePath?: string; tsxCli?: string },
): ChildCommand {
  const node = paths.nodePath ?? process.execPath;
  const inDir = (file: string) => `${service.dir}/${file}`;
  switch (mode) {
    case 'dist':
      return { command: node, args: [...service.nodeOptions, inDir(service.entry)], cwd: paths.rootDir };
    case 'source':
      return {
        command: node,
        args: [...service.nodeOptions, '--conditions=aiva-source', '--import', 'tsx', inDir(service.source)],
        cwd: paths.rootDir,
      };
    case 'watch':
      return {
        command: node,
        args: [
          `--import=${WATCHER_EXIT_WITH_PARENT}`,
          paths.tsxCli ?? resolveTsxCli(paths.rootDir),
          'watch',
          '--conditions=aiva-source',
          '--clear-screen=false',
          ...service.watch.flatMap((file) => ['--include', inDir(file)]),
          inDir(service.source),
        ],
        cwd: paths.rootDir,
      };
  }
}

/** The command line as one string, for logs. */
export function describeCommand(command: ChildCommand): string {
  return [command.command, ...command.args]
    .map((part) => (/\s/.test(part) ? JSON.stringify(part) : part))
    .join(' ');
}
