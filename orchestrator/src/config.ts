import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import { commonEnvSchema, env, ORCHESTRATOR_PORT, serviceNameSchema } from '@aiva/shared';
import { z } from 'zod';

/** The repository root (from src/ and from dist/ alike): where supergraph.yaml and supergraph.graphql live. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** One `DISCOVERY_DNS` entry: the instances of `service` are every address `host` resolves to, on `port`. */
export interface DnsDiscoveryTarget {
  service: string;
  host: string;
  port: number;
}

const DNS_ENTRY = /^([^=\s]+)=([A-Za-z0-9.-]+):(\d{1,5})$/;
const DNS_SERVER = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)|([0-9A-Fa-f:]+))(?::(\d{1,5}))?$/;

/** `users=users.aiva.internal:3001,auth=auth.aiva.internal:3002` → one target per entry. */
const dnsDiscoverySchema = env.list('').transform((entries, ctx): DnsDiscoveryTarget[] => {
  const targets: DnsDiscoveryTarget[] = [];
  for (const entry of entries) {
    const match = DNS_ENTRY.exec(entry);
    const port = Number(match?.[3]);
    if (!match || !serviceNameSchema.safeParse(match[1]).success || port < 1 || port > 65535) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" must look like users=users.aiva.internal:3001` });
      continue;
    }
    targets.push({ service: match[1]!, host: match[2]!, port });
  }
  return targets;
});

/** `10.0.0.2,127.0.0.1:5353,[::1]:53` → addresses as node:dns `Resolver.setServers` takes them. */
const dnsServersSchema = env.list('').refine(
  (servers) =>
    servers.every((server) => {
      const match = DNS_SERVER.exec(server);
      const address = match?.[1] ?? match?.[2] ?? match?.[3];
      return (
        address !== undefined &&
        isIP(address) !== 0 &&
        (match?.[4] === undefined || Number(match[4]) <= 65535)
      );
    }),
  { message: 'must be IP addresses with an optional port, e.g. 10.0.0.2,127.0.0.1:5353,[::1]:53' },
);

/** The orchestrator's variables: the common ones plus the registry, health, supergraph and discovery settings. */
export const orchestratorEnvSchema = commonEnvSchema.extend({
  /** Port of the registry API and the status page. */
  ORCHESTRATOR_PORT: env.port(ORCHESTRATOR_PORT),
  /**
   * The key registry credentials are derived from (`registryToken(REGISTRY_SECRET, service)`). Unset: every
   * write (register, heartbeat, deregister, report) is refused. Local runs generate one and hand out tokens.
   */
  REGISTRY_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * `committed` (production): serve only SUPERGRAPH_PATH and route only to instances serving its SDLs.
   * `live` (development): compose from the SDL the live instances serve, keeping the last good composition.
   */
  SUPERGRAPH_MODE: z.enum(['committed', 'live']).default('committed'),
  /** The committed supergraph served in `committed` mode. */
  SUPERGRAPH_PATH: z.string().default(`${REPO_ROOT}supergraph.graphql`),
  /** Rover's supergraph config: the subgraphs and their schema files (expected SDLs, live fallbacks). */
  SUPERGRAPH_CONFIG: z.string().default(`${REPO_ROOT}supergraph.yaml`),
  /** How often registered instances heartbeat (told to them in the registration answer). */
  HEARTBEAT_INTERVAL_MS: env.positiveInt(2_000),
  /** An instance silent for longer than this is dropped ("missed heartbeats"). */
  INSTANCE_TTL_MS: env.positiveInt(6_000),
  /** How often every instance's `/ready` is probed. */
  PROBE_INTERVAL_MS: env.positiveInt(2_000),
  /** How long one probe may take before it counts as failed. */
  PROBE_TIMEOUT_MS: env.positiveInt(1_000),
  /** Consecutive failed probes that make an instance unhealthy (out of the routing table). */
  UNHEALTHY_THRESHOLD: env.positiveInt(2),
  /** Consecutive passing probes that make a starting or unhealthy instance healthy (routable). */
  HEALTHY_THRESHOLD: env.positiveInt(1),
  /** DNS discovery: `service=host:port` entries; every address of `host` is an instance of `service`. */
  DISCOVERY_DNS: dnsDiscoverySchema,
  /** DNS servers for discovery (`host[:port]` IP addresses); empty: the system resolver's. */
  DNS_SERVERS: dnsServersSchema,
  /** How often DNS discovery resolves its names again. */
  DNS_REFRESH_MS: env.positiveInt(5_000),
  /** The services `start` / `dev` run (the manifest); default orchestrator/services.yaml. */
  SERVICES_FILE: z.string().optional(),
  /** Prefix of every Redis key of the registry (with REDIS_URL). */
  ORCHESTRATOR_REDIS_PREFIX: z.string().default('aiva:registry:'),
});

export type OrchestratorConfig = z.infer<typeof orchestratorEnvSchema>;
