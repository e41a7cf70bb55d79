import { ARGON2_OPTIONS, burnPasswordCheck, hashPassword, verifyPassword } from '../src/password.js';

/**
 * The cost of one argon2id hash / verification with ARGON2_OPTIONS on this machine (sequential, one at a time):
 *   node --import tsx --conditions=aiva-source subgraphs/auth/bench/argon2.bench.ts
 * ARGON2_BENCH_RUNS sets the number of measured runs (default 20, after 2 warm-up runs).
 */
const RUNS = Number(process.env.ARGON2_BENCH_RUNS ?? 20);
const WARMUP = 2;

interface Stats {
  mean: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  return {
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
    p50: at(0.5),
    p99: at(0.99),
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
  };
}

async function measure(task: () => Promise<unknown>): Promise<Stats> {
  for (let i = 0; i < WARMUP; i++) await task();
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await task();
    samples.push(performance.now() - start);
  }
  return stats(samples);
}

const format = (name: string, s: Stats) =>
  `${name.padEnd(22)} mean ${s.mean.toFixed(1).padStart(7)} ms   p50 ${s.p50.toFixed(1).padStart(7)} ms   p99 ${s.p99
    .toFixed(1)
    .padStart(7)} ms   (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})`;

const password = 'correct horse battery staple';
const hash = await hashPassword(password);

console.log(
  `argon2id m=${ARGON2_OPTIONS.memoryCost} KiB t=${ARGON2_OPTIONS.timeCost} p=${ARGON2_OPTIONS.parallelism}, ` +
    `${RUNS} runs each, node ${process.version}`,
);
console.log(format('hash', await measure(() => hashPassword(password))));
console.log(format('verify (match)', await measure(() => verifyPassword(hash, password))));
console.log(format('verify (mismatch)', await measure(() => verifyPassword(hash, 'wrong password'))));
console.log(format('burnPasswordCheck', await measure(() => burnPasswordCheck(password))));
