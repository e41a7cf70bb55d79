/**
 * A text summary of a V8 CPU profile (the `.cpuprofile` JSON that `node --cpu-prof` writes): the functions with
 * the most self time, and the packages (and AIVA's files) with the largest inclusive share, in markdown tables.
 */

export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    hitCount?: number;
    children?: number[];
  }>;
  /** Microseconds, on the monotonic clock (as `process.hrtime`). */
  startTime: number;
  endTime: number;
  /** The node of each sample. */
  samples: number[];
  /** Microseconds from the previous sample (the first from startTime). */
  timeDeltas: number[];
}

/** V8's pseudo-frames: not code of any package. */
const PSEUDO = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

/** `/work/main/node_modules/.pnpm/x@1/node_modules/@a/b/dist/c.js` → `@a/b/dist/c.js`; repo paths relative. */
export function shortPath(url: string, root: string): string {
  let path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules >= 0) path = path.slice(modules + '/node_modules/'.length);
  else if (path.startsWith(root)) path = path.slice(root.length).replace(/^\//, '');
  return path;
}

/**
 * The package a frame belongs to: an npm package's name, `@aiva/<dir>` for the workspace's own packages
 * (`shared/dist/…` → `@aiva/shared`), `node:<module>` (`node:internal/<first folder>`) for Node's own JavaScript,
 * `(wasm)` for WebAssembly (undici's HTTP parser) and `(V8/native)` for frames without a script (builtins, native
 * code).
 */
export function packageOf(url: string, root: string): string {
  if (!url) return '(V8/native)';
  if (url.startsWith('wasm:')) return '(wasm)';
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return parts[0] === 'internal' && parts.length > 1 ? `node:internal/${parts[1]}` : `node:${parts[0]}`;
  }
  const parts = shortPath(url, root).split('/');
  if (url.includes('/node_modules/'))
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  return parts[0] === 'subgraphs' ? `@aiva/${parts[1]}` : `@aiva/${parts[0]}`;
}

export interface ProfileWindow {
  /** Only samples taken from `fromUs` to `toUs` (monotonic microseconds, as the profile's startTime). */
  fromUs: number;
  toUs: number;
}

interface Row {
  name: string;
  ms: number;
}

const pct = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)}%`;

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

/**
 * The summary of `profile` as markdown: top `top` functions by self time (with `file:line`), the packages by
 * inclusive and self share, and AIVA's own files by inclusive share. Percentages are of the busy time (samples
 * not `(idle)`); a `window` keeps the samples of that span only (e.g. the load, without start-up).
 */
export function summarizeCpuProfile(
  profile: CpuProfile,
  options: { root: string; top?: number; window?: ProfileWindow },
): string {
  const { root } = options;
  const top = options.top ?? 25;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

  // The weight of each sample: the time to the next one (the last gets the mean interval).
  const times: number[] = [];
  let clock = profile.startTime;
  for (const delta of profile.timeDeltas) {
    clock += delta;
    times.push(clock);
  }
  const selfUs = new Map<number, number>();
  let busyUs = 0;
  let idleUs = 0;
  let windowUs = 0;
  let kept = 0;
  const inclusivePackage = new Map<string, number>();
  const inclusiveFile = new Map<string, number>();
  const selfPackage = new Map<string, number>();
  const meanUs = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
  for (let i = 0; i < profile.samples.length; i++) {
    const at = times[i]!;
    if (options.window && (at < options.window.fromUs || at > options.window.toUs)) continue;
    const weight = i + 1 < times.length ? times[i + 1]! - at : meanUs;
    const id = profile.samples[i]!;
    const frame = byId.get(id)!.callFrame;
    kept++;
    windowUs += weight;
    if (frame.functionName === '(idle)') {
      idleUs += weight;
      continue;
    }
    busyUs += weight;
    selfUs.set(id, (selfUs.get(id) ?? 0) + weight);
    if (!PSEUDO.has(frame.functionName)) {
      const own = packageOf(frame.url, root);
      selfPackage.set(own, (selfPackage.get(own) ?? 0) + weight);
    } else {
      selfPackage.set(frame.functionName, (selfPackage.get(frame.functionName) ?? 0) + weight);
    }
    // Every package and AIVA file on the stack, once per sample.
    const packages = new Set<string>();
    const files = new Set<string>();
    for (let node: number | undefined = id; node !== undefined; node = parentOf.get(node)) {
      const call = byId.get(node)!.callFrame;
      if (PSEUDO.has(call.functionName)) continue;
      const name = packageOf(call.url, root);
      packages.add(name);
      if (name.startsWith('@aiva/')) files.add(shortPath(call.url, root));
    }
    for (const name of packages) inclusivePackage.set(name, (inclusivePackage.get(name) ?? 0) + weight);
    for (const name of files) inclusiveFile.set(name, (inclusiveFile.get(name) ?? 0) + weight);
  }

  // Self time per function (nodes of the same function in different stacks added up).
  const selfFunction = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const where = url ? ` ${shortPath(url, root)}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where}`;
    selfFunction.set(name, (selfFunction.get(name) ?? 0) + us);
  }
  const sorted = (map: Map<string, number>, limit: number): Row[] =>
    [...map.entries()]
      .map(([name, us]) => ({ name, ms: us / 1000 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, limit);
  const busyMs = busyUs / 1000;
  const escapePipes = (text: string) => text.replaceAll('|', '\\|');

  return [
    `${kept} samples over ${(windowUs / 1e6).toFixed(1)} s: busy ${(busyUs / 1e6).toFixed(1)} s (${pct(busyUs, windowUs)}), idle ${(idleUs / 1e6).toFixed(1)} s; shares below are of the busy time`,
    '',
    `Top ${top} functions by self time`,
    '',
    table(
      ['function (file:line)', 'self ms', 'self %'],
      sorted(selfFunction, top).map((r) => [
        `\`${escapePipes(r.name)}\``,
        r.ms.toFixed(0),
        pct(r.ms, busyMs),
      ]),
    ),
    '',
    'Packages by inclusive share (time with any function of the package on the stack; they overlap)',
    '',
    table(
      ['package', 'inclusive %', 'self %'],
      sorted(inclusivePackage, 25).map((r) => [
        r.name,
        pct(r.ms, busyMs),
        pct((selfPackage.get(r.name) ?? 0) / 1000, busyMs),
      ]),
    ),
    '',
    'Self time by package (adds up to 100%)',
    '',
    table(
      ['package', 'self %'],
      sorted(selfPackage, 20).map((r) => [r.name, pct(r.ms, busyMs)]),
    ),
    '',
    "AIVA's files by inclusive share",
    '',
    table(
      ['file', 'inclusive %'],
      sorted(inclusiveFile, 20).map((r) => [r.name, pct(r.ms, busyMs)]),
    ),
  ].join('\n');
}
