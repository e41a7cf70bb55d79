import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createSupervisor,
  loadServiceManifest,
  parseStartArgs,
  ServiceManifestError,
  StartArgsError,
  SupervisorOptionsError,
} from '../src/supervisor/index.js';
import { fixtureManifest } from './fixtures/supervisor/harness.js';

const scratch: string[] = [];

afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A manifest file in a scratch root that has a `svc/src/main.ts`. */
function manifestFile(yaml: string): { file: string; rootDir: string } {
  const rootDir = mkdtempSync(join(tmpdir(), 'aiva-manifest-'));
  scratch.push(rootDir);
  mkdirSync(join(rootDir, 'svc/src'), { recursive: true });
  writeFileSync(join(rootDir, 'svc/src/main.ts'), '');
  const file = join(rootDir, 'services.yaml');
  writeFileSync(file, yaml);
  return { file, rootDir };
}

function entry(fields: Record<string, string>): string {
  const all = {
    name: 'one',
    package: "'@aiva/one'",
    dir: 'svc',
    entry: 'dist/main.js',
    source: 'src/main.ts',
    port: '4001',
    portVariable: 'ONE_PORT',
    kind: 'subgraph',
    ...fields,
  };
  const lines = Object.entries(all).filter(([, value]) => value !== '');
  return lines.map(([key, value], index) => `${index === 0 ? '  - ' : '    '}${key}: ${value}`).join('\n');
}

function problemsOf(yaml: string): string[] {
  const { file, rootDir } = manifestFile(yaml);
  try {
    loadServiceManifest(file, { rootDir });
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceManifestError);
    return (error as ServiceManifestError).problems;
  }
  throw new Error('the manifest loaded');
}

describe('service manifest', () => {
  it('lists auth, users, ai, media, notifications and the gateway, in that order, with their packages, entries and ports', () => {
    const manifest = loadServiceManifest();
    expect(
      manifest.services.map((s) => [
        s.name,
        s.package,
        s.dir,
        s.entry,
        s.source,
        s.port,
        s.portVariable,
        s.kind,
      ]),
    ).toEqual([
      ['auth', '@aiva/auth', 'subgraphs/auth', 'dist/main.js', 'src/main.ts', 3002, 'AUTH_PORT', 'subgraph'],
      [
        'users',
        '@aiva/users',
        'subgraphs/users',
        'dist/main.js',
        'src/main.ts',
        3001,
        'USERS_PORT',
        'subgraph',
      ],
      ['ai', '@aiva/ai', 'subgraphs/ai', 'dist/main.js', 'src/main.ts', 3003, 'AI_PORT', 'subgraph'],
      [
        'media',
        '@aiva/media',
        'subgraphs/media',
        'dist/main.js',
        'src/main.ts',
        3004,
        'MEDIA_PORT',
        'subgraph',
      ],
      [
        'notifications',
        '@aiva/notifications',
        'subgraphs/notifications',
        'dist/main.js',
        'src/main.ts',
        3005,
        'NOTIFICATIONS_PORT',
        'subgraph',
      ],
      ['gateway', '@aiva/gateway', 'gateway', 'dist/main.js', 'src/main.ts', 3000, 'GATEWAY_PORT', 'gateway'],
    ]);
    expect(manifest.services.find((s) => s.name === 'users')?.watch).toEqual(['schema.graphql']);
  });

  it('names the entry and the field of each problem', () => {
    const problems = problemsOf(
      `services:\n${entry({ port: 'seventy' })}\n${entry({ name: 'two', kind: 'worker', portVariable: '' })}\n`,
    );
    expect(problems).toContain('services[0] (one).port: Invalid input: expected number, received string');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^services\[1\] \(two\)\.kind: /),
        'services[1] (two).portVariable: is required',
      ]),
    );
  });

  it('rejects duplicate names, ports and port variables, unknown fields and paths outside the root', () => {
    expect(problemsOf(`services:\n${entry({})}\n${entry({ port: '4002' })}\n`)).toEqual([
      'services[1] (one).name: one is already used by services[0] (one)',
      'services[1] (one).portVariable: ONE_PORT is already used by services[0] (one)',
    ]);
    expect(problemsOf(`services:\n${entry({ colour: 'blue' })}\n`)).toEqual([
      expect.stringMatching(/^services\[0\] \(one\): Unrecognized key: "colour"/),
    ]);
    expect(problemsOf(`services:\n${entry({ dir: '../elsewhere' })}\n`)).toEqual([
      expect.stringMatching(/^services\[0\] \(one\)\.dir: must be a relative path/),
    ]);
    expect(problemsOf('services: []\n')).toEqual(['services: must list at least one service']);
  });

  it('names a dir or source file that does not exist; a missing build is fine', () => {
    expect(problemsOf(`services:\n${entry({ dir: 'nowhere' })}\n`)).toEqual([
      expect.stringMatching(/^services\[0\] \(one\)\.dir: .*nowhere is not a directory$/),
    ]);
    expect(problemsOf(`services:\n${entry({ source: 'src/missing.ts' })}\n`)).toEqual([
      expect.stringMatching(/^services\[0\] \(one\)\.source: .*missing\.ts does not exist$/),
    ]);
    const { file, rootDir } = manifestFile(`services:\n${entry({})}\n`);
    expect(loadServiceManifest(file, { rootDir }).services[0]?.name).toBe('one');
  });

  it('says when the file is missing or not YAML', () => {
    expect(() => loadServiceManifest('/nonexistent/services.yaml')).toThrow(/cannot read the manifest/);
    expect(problemsOf('services: [\n')).toEqual([expect.stringMatching(/^not valid YAML/)]);
  });
});

describe('parseStartArgs', () => {
  const services = ['auth', 'users', 'gateway'];

  it('reads --scale in every form and positional service names', () => {
    expect(parseStartArgs([], services)).toEqual({ scale: {}, services: [] });
    expect(parseStartArgs(['--scale', 'users=2', '--scale', 'auth=3'], services)).toEqual({
      scale: { users: 2, auth: 3 },
      services: [],
    });
    expect(parseStartArgs(['--scale=users=2,auth=2'], services).scale).toEqual({ users: 2, auth: 2 });
    expect(parseStartArgs(['--', 'users', '--scale', 'users=16', 'users'], services)).toEqual({
      scale: { users: 16 },
      services: ['users'],
    });
  });

  it('names the bad value', () => {
    const error = (argv: string[]) => {
      try {
        parseStartArgs(argv, services);
      } catch (caught) {
        expect(caught).toBeInstanceOf(StartArgsError);
        return (caught as Error).message;
      }
      throw new Error('parsed');
    };
    expect(error(['--scale', 'orders=2'])).toBe(
      '--scale: unknown service "orders" (known: auth, users, gateway)',
    );
    expect(error(['--scale', 'users=0'])).toContain('users=0');
    expect(error(['--scale', 'users=17'])).toContain('users=17');
    expect(error(['--scale', 'users=two'])).toContain('users=two');
    expect(error(['--scale', 'users'])).toContain('"users" must look like users=2');
    expect(error(['--scale'])).toContain('needs a value');
    expect(error(['--scale=users=2', '--scale', 'users=3'])).toContain('users is given more than once');
    expect(error(['orders'])).toBe('service: unknown service "orders" (known: auth, users, gateway)');
    expect(error(['--verbose'])).toContain('unknown option "--verbose"');
  });
});

describe('createSupervisor options', () => {
  it('refuses unknown services, bad counts, a bad port variable and a missing build, naming them', () => {
    const manifest = fixtureManifest('alpha');
    expect(() => createSupervisor({ manifest, scale: { omega: 2 } })).toThrow(
      new SupervisorOptionsError('scale: unknown service "omega" (known: alpha)'),
    );
    expect(() => createSupervisor({ manifest, scale: { alpha: 17 } })).toThrow(/alpha=17/);
    expect(() => createSupervisor({ manifest, watch: ['omega'] })).toThrow(/watch: unknown service "omega"/);
    expect(() => createSupervisor({ manifest, env: { ALPHA_PORT: 'x' } })).toThrow(
      /ALPHA_PORT: must be a port/,
    );
    const unbuilt = {
      ...manifest,
      services: manifest.services.map((s) => ({ ...s, entry: 'dist/main.js' })),
    };
    expect(() => createSupervisor({ manifest: unbuilt, runtime: 'dist' })).toThrow(
      /does not exist \(build first/,
    );
  });
});
