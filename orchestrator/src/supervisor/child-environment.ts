import { registryToken } from '@aiva/shared';
import type { ServiceDefinition } from './manifest.js';

/** Variables of the supervisor's own environment that never reach a child. */
export const WITHHELD_VARIABLES = [
  // The orchestrator's secret: a child gets only its own service's token, so it cannot pose as another service.
  'REGISTRY_SECRET',
  // Derived per service below; an inherited one would be the wrong service's.
  'REGISTRY_TOKEN',
] as const;

export interface ChildEnvironmentInput {
  /** The base environment (usually the orchestrator's own). */
  base: NodeJS.ProcessEnv;
  service: ServiceDefinition;
  /** `users#2`. */
  slot: string;
  port: number;
  /** The orchestrator's registry secret; unset: the child gets no registry token (it will not register). */
  registrySecret?: string | undefined;
  /** Where the child registers; unset: whatever the base environment says. */
  orchestratorUrl?: string | undefined;
}

/**
 * The environment of one supervised process: the service's own defaults (`env` in the manifest) under the base
 * environment, without the withheld variables, plus its
 * port variable, `ORCHESTRATOR_URL`, `REGISTRY_TOKEN` (its service's registry credential), `AIVA_INSTANCE_SLOT`
 * and `AIVA_SUPERVISED=1` (its stdin is the supervisor's pipe: see `exitWithParent`).
 */
export function childEnvironment(input: ChildEnvironmentInput): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...input.service.env, ...input.base };
  for (const name of WITHHELD_VARIABLES) delete env[name];
  if (input.registrySecret) env.REGISTRY_TOKEN = registryToken(input.registrySecret, input.service.name);
  if (input.orchestratorUrl) env.ORCHESTRATOR_URL = input.orchestratorUrl;
  env.AIVA_INSTANCE_SLOT = input.slot;
  env.AIVA_SUPERVISED = '1';
  env[input.service.portVariable] = String(input.port);
  return env;
}
