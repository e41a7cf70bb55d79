// The process supervisor: every service of orchestrator/services.yaml as its own Node process, started in order,
// restarted with backoff, stopped gateway first.
export {
  type ChildCommand,
  childCommand,
  describeCommand,
  type RunMode,
  resolveTsxCli,
} from './child-command.js';
export { childEnvironment, WITHHELD_VARIABLES } from './child-environment.js';
export { crashLoopReason, describeExit } from './exit-reason.js';
export { LinePrefixer, type LineSink, linePrefix } from './line-prefixer.js';
export type { ProcessExitInfo, SlotOutcome } from './managed-process.js';
export {
  DEFAULT_MANIFEST_FILE,
  type LoadServiceManifestOptions,
  loadServiceManifest,
  type ServiceDefinition,
  type ServiceManifest,
  ServiceManifestError,
} from './manifest.js';
export { probeHost, type WaitReady, waitForHealthy } from './readiness.js';
export {
  backoffDelay,
  DEFAULT_RESTART_POLICY,
  decideRestart,
  type RestartDecision,
  type RestartPolicy,
  restartPolicy,
} from './restart-policy.js';
export { MAX_INSTANCES, parseStartArgs, type StartArgs, StartArgsError } from './start-args.js';
export type { ProcessExitView, ProcessState, ProcessStatusView } from './status.js';
export {
  createSupervisor,
  DEFAULT_READY_TIMEOUT_MS,
  type SlotPlan,
  type Supervisor,
  type SupervisorOptions,
  SupervisorOptionsError,
} from './supervisor.js';
