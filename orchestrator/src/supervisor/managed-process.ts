import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from '@aiva/shared';
import { type ChildCommand, describeCommand } from './child-command.js';
import { crashLoopReason, describeExit } from './exit-reason.js';
import { LinePrefixer, type LineSink } from './line-prefixer.js';
import type { WaitReady } from './readiness.js';
import { RecentLines } from './recent-lines.js';
import { decideRestart, type RestartPolicy } from './restart-policy.js';
import type { ProcessExitView, ProcessState, ProcessStatusView } from './status.js';

/** What `onExit` is told about every process that ended, whether it will be restarted or not. */
export interface ProcessExitInfo {
  pid: number | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ISO time. */
  at: string;
  /** The supervisor stopped it; false when it ended on its own (a crash, or a kill from outside). */
  expected: boolean;
  /** The slot starts a new process after the backoff. */
  willRestart: boolean;
  /** Set when the process could not be started at all (e.g. the command does not exist). */
  error: string | null;
}

/** How the first start of a slot ended: ready to serve, given up on (crash loop), or stopped meanwhile. */
export type SlotOutcome = 'ready' | 'crash-loop' | 'stopped';

/** Lines of each output stream kept for crash reports. */
const RECENT_LINES = 20;

/** After a process exited, how long its output pipes may take to deliver their last bytes. */
const OUTPUT_DRAIN_MS = 2_000;

export interface ManagedProcessOptions {
  service: string;
  /** `users#2`. */
  slot: string;
  command: ChildCommand;
  env: NodeJS.ProcessEnv;
  policy: RestartPolicy;
  /** Put before each output line (`users#2 │ `). */
  prefix: string;
  output: LineSink;
  logger: Logger;
  waitReady: WaitReady;
  onExit: (slot: string, info: ProcessExitInfo) => void;
}

/**
 * One process slot (`users#2`): spawns its process, restarts it with backoff when it exits on its own, leaves it
 * down after `crashLoopLimit` consecutive failures (saying why), and stops it: SIGTERM, then SIGKILL to its
 * whole process group after `stopTimeoutMs`.
 *
 * The process runs in a process group of its own (so a Ctrl-C in the terminal reaches only the orchestrator),
 * with its stdin a pipe from here: when the orchestrator dies, the pipe closes and the child leaves
 * (`exitWithParent` in @aiva/shared).
 */
export class ManagedProcess {
  readonly service: string;
  readonly slot: string;
  private readonly stdoutLines = new RecentLines(RECENT_LINES);
  private readonly stderrLines = new RecentLines(RECENT_LINES);
  private child: ChildProcess | null = null;
  private state: ProcessState = 'stopped';
  private restarts = 0;
  private failures = 0;
  private startedAt: number | null = null;
  private lastExit: ProcessExitView | null = null;
  private reason: string | null = null;
  private started = false;
  /** Set by stop(): from then on an exit is expected and nothing restarts. */
  private stopRequested = false;
  private stopping: Promise<void> | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Aborted when the current process ends: its readiness wait is over. */
  private attempt: AbortController | null = null;
  /** Resolves once the current process has ended and its exit was handled. */
  private exited: Promise<void> = Promise.resolve();
  private readonly outcome: Promise<SlotOutcome>;
  private settle: (outcome: SlotOutcome) => void = () => {};

  constructor(private readonly options: ManagedProcessOptions) {
    this.service = options.service;
    this.slot = options.slot;
    this.outcome = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** Starts the slot's first process; resolves when it is first ready, given up on, or stopped. */
  start(): Promise<SlotOutcome> {
    if (!this.started && !this.stopRequested) {
      this.started = true;
      this.spawnProcess();
    }
    if (this.stopRequested) this.settle('stopped');
    return this.outcome;
  }

  /** Stops the slot for good (no restart): SIGTERM, SIGKILL after `stopTimeoutMs`. Resolves once it is gone. */
  stop(): Promise<void> {
    if (!this.stopping) {
      this.stopRequested = true;
      this.stopping = this.stopProcess();
    }
    return this.stopping;
  }

  /** Notes why the slot is not ready yet (shown by `status()` until it is). */
  noteNotReady(reason: string): void {
    if (this.state === 'starting') this.reason = reason;
  }

  status(): ProcessStatusView {
    return {
      service: this.service,
      slot: this.slot,
      pid: this.child?.pid ?? null,
      state: this.state,
      restarts: this.restarts,
      startedAt: this.startedAt === null ? null : new Date(this.startedAt).toISOString(),
      lastExit: this.lastExit,
      reason: this.reason,
    };
  }

  private spawnProcess(): void {
    const { command, env, logger } = this.options;
    this.restartTimer = null;
    this.stdoutLines.clear();
    this.stderrLines.clear();
    const attempt = new AbortController();
    this.attempt = attempt;
    this.state = 'starting';
    this.reason = null;
    this.startedAt = Date.now();

    const child = spawn(command.command, command.args, {
      cwd: command.cwd,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    const stdout = new LinePrefixer(this.options.prefix, this.options.output, (l) =>
      this.stdoutLines.push(l),
    );
    const stderr = new LinePrefixer(this.options.prefix, this.options.output, (l) =>
      this.stderrLines.push(l),
    );
    child.stdout?.on('data', (chunk: Buffer) => stdout.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.write(chunk));
    // The pipe breaks when the child ends; nothing is ever written to it.
    child.stdin?.on('error', () => {});

    let markExited: () => void = () => {};
    this.exited = new Promise((resolve) => {
      markExited = resolve;
    });
    let finished = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, error: string | null) => {
      if (finished) return;
      finished = true;
      stdout.flush();
      stderr.flush();
      this.handleExit(child, attempt, { code, signal, error });
      markExited();
    };
    let drainTimer: NodeJS.Timeout | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      // Normally 'close' follows once the pipes are drained; a grandchild holding them must not delay us.
      drainTimer = setTimeout(() => finish(code, signal, null), OUTPUT_DRAIN_MS);
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(drainTimer);
      finish(exit?.code ?? code, exit?.signal ?? signal, null);
    });
    child.on('error', (error) => {
      if (child.pid === undefined) finish(null, null, error.message);
      else logger.warn({ slot: this.slot, err: error }, `${this.slot}: process error`);
    });

    if (child.pid !== undefined) {
      logger.info(
        { slot: this.slot, pid: child.pid, command: describeCommand(command) },
        `${this.slot} started`,
      );
      this.awaitReady(attempt);
    }
  }

  private awaitReady(attempt: AbortController): void {
    // Through a promise chain, so a callback that throws at once is handled like one that rejects.
    Promise.resolve()
      .then(() => this.options.waitReady(this.slot, attempt.signal))
      .then(
        () => {
          if (attempt.signal.aborted || this.attempt !== attempt || this.state !== 'starting') return;
          this.state = 'running';
          this.reason = null;
          this.options.logger.info({ slot: this.slot, pid: this.child?.pid }, `${this.slot} is ready`);
          this.settle('ready');
        },
        (error: unknown) => {
          if (attempt.signal.aborted) return;
          this.options.logger.warn({ slot: this.slot, err: error }, `${this.slot}: readiness check failed`);
        },
      );
  }

  private handleExit(
    child: ChildProcess,
    attempt: AbortController,
    ended: { code: number | null; signal: NodeJS.Signals | null; error: string | null },
  ): void {
    const { logger, policy } = this.options;
    attempt.abort();
    if (this.child === child) this.child = null;
    const at = new Date().toISOString();
    this.lastExit = { code: ended.code, signal: ended.signal, at };
    const expected = this.stopRequested;
    const ranForMs = Date.now() - (this.startedAt ?? Date.now());
    const decision = expected ? null : decideRestart(this.failures, ranForMs, policy);
    this.notifyExit({
      pid: child.pid ?? null,
      ...ended,
      at,
      expected,
      willRestart: decision?.restart ?? false,
    });

    if (!decision) {
      if (this.state !== 'crash-loop') this.state = 'stopped';
      this.settle('stopped');
      return;
    }
    this.failures = decision.failures;
    const how = ended.error ? `cannot start: ${ended.error}` : describeExit(ended.code, ended.signal);
    if (decision.restart) {
      this.state = 'restarting';
      logger.warn(
        {
          slot: this.slot,
          pid: child.pid,
          code: ended.code,
          signal: ended.signal,
          failures: decision.failures,
        },
        `${this.slot} ended (${how}): restarting in ${decision.delayMs} ms`,
      );
      this.restartTimer = setTimeout(() => {
        this.restarts += 1;
        this.spawnProcess();
      }, decision.delayMs);
      return;
    }
    this.state = 'crash-loop';
    this.reason = crashLoopReason({
      failures: decision.failures,
      code: ended.code,
      signal: ended.signal,
      error: ended.error ?? undefined,
      stderr: this.stderrLines.last(),
      stdout: this.stdoutLines.last(),
    });
    logger.error({ slot: this.slot, code: ended.code, signal: ended.signal }, `${this.slot} ${this.reason}`);
    this.settle('crash-loop');
  }

  private notifyExit(info: ProcessExitInfo): void {
    try {
      this.options.onExit(this.slot, info);
    } catch (error) {
      this.options.logger.error({ slot: this.slot, err: error }, `${this.slot}: onExit failed`);
    }
  }

  private async stopProcess(): Promise<void> {
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    const child = this.child;
    if (!child) {
      if (this.state !== 'crash-loop') this.state = 'stopped';
      this.settle('stopped');
      return;
    }
    const running = child.exitCode === null && child.signalCode === null;
    if (running) child.kill('SIGTERM');
    const { stopTimeoutMs } = this.options.policy;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!timedOut) return;
    this.options.logger.warn(
      { slot: this.slot, pid: child.pid, stopTimeoutMs },
      `${this.slot} did not stop within ${stopTimeoutMs} ms after SIGTERM: sending SIGKILL`,
    );
    killProcessGroup(child, 'SIGKILL');
    await this.exited;
  }
}

/** Signals the child's whole process group (it leads its own), or the child alone when that fails. */
function killProcessGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) {
      process.kill(-child.pid, signal);
      return;
    }
  } catch {
    // The group is gone or not ours: fall back to the process itself.
  }
  child.kill(signal);
}
