import type { Logger } from 'pino';
import type { ExecutorConfig } from '../config.ts';
import type { Runtime } from '../runtime/types.ts';
import type { Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import type { Metrics } from './metrics.ts';

/** What the instance and execution services are built from (by app.ts, or by a test). */
export interface ServiceDeps {
  store: Store;
  runtime: Runtime;
  config: ExecutorConfig;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
}
