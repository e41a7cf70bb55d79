import type { Logger } from '../log.js';
import { REGISTRY_API, type TrafficReport } from './protocol.js';
import type { ServiceRouter } from './service-router.js';

export interface TrafficReporterOptions {
  router: ServiceRouter;
  orchestratorUrl: string;
  /** The reporting service's registry credential; without it nothing is reported. */
  token: string | undefined;
  /** The reporting service (whose credential `token` is). */
  service: string;
  /** Who reports, e.g. the gateway's instance id. */
  reporter: () => string;
  /** Report interval in ms (default 2000). */
  intervalMs?: number;
  logger?: Logger;
}

export interface TrafficReporter {
  start(): void;
  stop(): Promise<void>;
}

/**
 * Sends the router's per-instance traffic (requests, errors, connection failures, timeouts, latency, breaker
 * state) to the orchestrator every interval: its passive health signals, request rates and metrics. Quiet
 * intervals send nothing; a failed report is dropped (the next one carries newer figures).
 */
export function createTrafficReporter(options: TrafficReporterOptions): TrafficReporter {
  const intervalMs = options.intervalMs ?? 2_000;
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let warned = false;

  async function send(): Promise<void> {
    const instances = options.router.takeTraffic();
    if (instances.length === 0 || !options.token) return;
    const report: TrafficReport = {
      reporter: options.reporter(),
      windowSeconds: intervalMs / 1000,
      instances,
    };
    try {
      const response = await fetch(new URL(REGISTRY_API.reports, options.orchestratorUrl), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${options.token}`,
          'x-aiva-service': options.service,
        },
        body: JSON.stringify(report),
        signal: AbortSignal.timeout(2_000),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      warned = false;
    } catch (error) {
      if (!warned) options.logger?.debug({ err: (error as Error).message }, 'traffic report not delivered');
      warned = true;
    }
  }

  return {
    start() {
      if (timer || !options.token) return;
      timer = setInterval(() => {
        sending ??= send().finally(() => {
          sending = undefined;
        });
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      await sending;
    },
  };
}
