import { createLogger, type Logger } from '@aiva/shared';
import { createGateway, type LaunchableService, SUBGRAPHS } from './services.js';

export interface LaunchOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Serve this supergraph instead of the committed one (dev: freshly composed). */
  supergraphSdl?: string;
  subgraphs?: LaunchableService[];
}

export interface RunningStack {
  gatewayUrl: string;
  urls: Record<string, string>;
  /** Stops the gateway first (no new work), then the subgraphs in reverse start order. */
  stop(): Promise<void>;
}

/**
 * Runs every subgraph and the gateway in this process, each on its own port. Without NATS_URL they share the
 * in-process event bus; with it, each connects to NATS itself.
 */
export async function launchStack(options: LaunchOptions = {}): Promise<RunningStack> {
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const serviceLogger = (name: string) =>
    options.logger?.child({ component: name }) ?? createLogger(name, { level: env.LOG_LEVEL ?? 'info' });
  const started: Array<{ name: string; close(): Promise<void> }> = [];
  const urls: Record<string, string> = {};
  const stop = async () => {
    for (const service of started.reverse()) await service.close();
  };
  try {
    for (const subgraph of options.subgraphs ?? SUBGRAPHS) {
      const app = await subgraph.create({
        env,
        logger: serviceLogger(subgraph.name),
        gatewayUrl: () => (urls.gateway ? `${urls.gateway}/graphql` : (env.AUTH_SUPERGRAPH_URL ?? '')),
      });
      urls[subgraph.name] = await app.listen();
      // Services started after auth verify tokens against the auth this process runs, wherever it listens.
      if (subgraph.name === 'auth') env.AUTH_JWKS_URL ??= `${urls.auth}/.well-known/jwks.json`;
      started.push({ name: subgraph.name, close: () => app.close() });
    }
    const subgraphUrls = Object.fromEntries(
      Object.entries(urls).map(([name, base]) => [name, `${base}/graphql`]),
    );
    const gateway = await createGateway({
      env,
      subgraphUrls,
      logger: serviceLogger('gateway'),
      ...(options.supergraphSdl ? { supergraphSdl: options.supergraphSdl } : {}),
    });
    urls.gateway = await gateway.listen();
    started.push({ name: 'gateway', close: () => gateway.close() });
  } catch (error) {
    await stop();
    throw error;
  }
  return { gatewayUrl: `${urls.gateway}/graphql`, urls, stop };
}
