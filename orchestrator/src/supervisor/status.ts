// The supervisor reports its process slots in the registry's own shape (`ProcessStatusView` in
// registry/status.ts), which the status page shows. A type-only import: the supervisor runs without a registry.
import type { ProcessStatusView } from '../registry/status.js';

export type { ProcessStatusView };

/** Where a supervised process slot is in its life. */
export type ProcessState = ProcessStatusView['state'];

/** How a process ended. */
export type ProcessExitView = NonNullable<ProcessStatusView['lastExit']>;
