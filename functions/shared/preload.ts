/**
 * What a storing Lambda (persist, sweeper) loads during init, before its first invocation: the
 * backend modules and drivers its configured locations select, and no others.
 *
 * Init is the better place than the first use: the work is the same, but init is where Lambda
 * can hide it (provisioned concurrency and proactive initialization run init before any request
 * arrives), while a first invocation always makes its caller wait for it.
 *
 * Only the environment as it stands at init is read: a location held in Secrets Manager is known
 * after the first invocation resolves it (functions/shared/lambda.ts), so its driver loads then.
 */
import { loadConfig } from '../config/config.ts';
import { locationPlan } from '../domain/persist.ts';
import { loadBackendModules, type BackendKind } from '../storage/select.ts';

export async function preloadStorage(env: Readonly<Record<string, string | undefined>> = process.env): Promise<BackendKind[]> {
  let plan;
  try {
    plan = locationPlan(loadConfig(env));
  } catch {
    // The first invocation reads the configuration again and reports the error, naming the variable.
    return [];
  }
  return loadBackendModules(plan.map((p) => p.location));
}
