import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runSchemaCheck, SUPERGRAPH_ARTIFACT, SUPERGRAPH_CONFIG } from './check.js';
import { composeFromConfig } from './compose.js';
import { publishSchema } from './publish.js';
import { PUBLISHED_SCHEMA_FILE } from './published.js';
import { loadSupergraphConfig } from './supergraph-config.js';

const USAGE = `Usage:
  schema compose [--config <supergraph.yaml>]               compose and write ${SUPERGRAPH_ARTIFACT} next to the config
  schema check   [--config <supergraph.yaml>] [--base <ref>]  CI gate: composition, stale artifact, breaking changes
                                                            against ${PUBLISHED_SCHEMA_FILE} (and --base),
                                                            its history, client operations
  schema publish [--config <supergraph.yaml>]               write the API schema to ${PUBLISHED_SCHEMA_FILE}; refuses
                                                            while breaking changes against it are unapproved
`;

const COMMANDS = ['compose', 'check', 'publish'] as const;
type Command = (typeof COMMANDS)[number];

function isCommand(value: string | undefined): value is Command {
  return (COMMANDS as readonly (string | undefined)[]).includes(value);
}

interface CliArgs {
  command: string | undefined;
  configFile: string | undefined;
  base: string | undefined;
}

function parseCli(argv: string[]): CliArgs {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string' }, base: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  return { command: values.help ? 'help' : positionals[0], configFile: values.config, base: values.base };
}

/** The supergraph.yaml to use: `--config`, else the nearest one walking up from `from`. */
function locateConfig(explicit: string | undefined, from: string = process.cwd()): string {
  if (explicit !== undefined) return resolve(from, explicit);
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const candidate = join(dir, SUPERGRAPH_CONFIG);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new Error(`no ${SUPERGRAPH_CONFIG} found in ${from} or any parent directory (use --config <path>)`);
}

function composeCommand(configFile: string): number {
  const config = loadSupergraphConfig(configFile);
  const outcome = composeFromConfig(config);
  for (const hint of outcome.hints) console.log(`hint: ${hint}`);
  if (!outcome.ok) {
    console.error(`Composition failed with ${outcome.errors.length} error(s):`);
    for (const error of outcome.errors) console.error(`  - ${error}`);
    return 1;
  }
  const target = join(dirname(configFile), SUPERGRAPH_ARTIFACT);
  const unchanged = existsSync(target) && readFileSync(target, 'utf8') === outcome.supergraphSdl;
  if (!unchanged) writeFileSync(target, outcome.supergraphSdl);
  const names = config.subgraphs.map((s) => s.name).join(', ');
  console.log(`${unchanged ? 'Unchanged' : 'Wrote'} ${target} (subgraphs: ${names})`);
  return 0;
}

async function checkCommand(configFile: string, base: string | undefined): Promise<number> {
  const result = await runSchemaCheck({ root: dirname(configFile), configFile, base });
  for (const message of result.messages) console.log(message);
  return result.ok ? 0 : 1;
}

async function publishCommand(configFile: string): Promise<number> {
  const result = await publishSchema({ root: dirname(configFile), configFile });
  for (const message of result.messages) console.log(message);
  return result.ok ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const args = parseCli(argv);
  if (args.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!isCommand(args.command)) {
    process.stderr.write(`${args.command ? `Unknown command "${args.command}"\n` : ''}${USAGE}`);
    return 2;
  }
  if (args.command !== 'check' && args.base !== undefined) {
    process.stderr.write(`--base only applies to check\n${USAGE}`);
    return 2;
  }
  const configFile = locateConfig(args.configFile);
  switch (args.command) {
    case 'compose':
      return composeCommand(configFile);
    case 'check':
      return checkCommand(configFile, args.base);
    case 'publish':
      return publishCommand(configFile);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);
