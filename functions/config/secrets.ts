/**
 * Secrets read at runtime, never stored in plaintext environment variables.
 *
 * The stack gives each Lambda `<VAR>_SECRET_ARN` variables instead of the secret values, e.g.
 *   LIVEKIT_API_SECRET_SECRET_ARN=arn:aws:secretsmanager:eu-west-1:123456789012:secret:calldata/livekit-AbCdEf:apiSecret::
 * The value uses the same reference syntax as ECS task definitions:
 *   <secret ARN or name>[:<json-key>[:<version-stage>[:<version-id>]]]
 * (the json-key part selects one field of a JSON secret; omitted, the whole secret string is used).
 *
 * `resolveSecretEnv()` fetches every referenced secret once per process (a Lambda container),
 * writes each value into `<VAR>`, and must run before the configuration is first read; the
 * `secretsFromEnv()` middy middleware does exactly that as the first step of a handler.
 * Errors name the variable at fault (as configuration errors do) and never contain the value.
 */
// Loaded on the first fetch only: a function without secret references never pays for this SDK at cold start.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { MiddlewareObj } from '@middy/core';
import { CallDataError } from '../errors.ts';
import { ConfigError } from './errors.ts';

type MutableEnv = Record<string, string | undefined>;

export const SECRET_SUFFIX = '_SECRET_ARN';

export interface SecretReference {
  /** The variable that receives the value (the reference variable without `_SECRET_ARN`). */
  variable: string;
  /** The variable holding the reference. */
  source: string;
  secretId: string;
  jsonKey?: string;
  versionStage?: string;
  versionId?: string;
}

/** Parses `<arn-or-name>[:json-key[:version-stage[:version-id]]]` (ECS `valueFrom` syntax). */
export function parseSecretReference(source: string, value: string): SecretReference {
  const variable = source.slice(0, -SECRET_SUFFIX.length);
  const trimmed = value.trim();
  if (!trimmed) throw new ConfigError([{ variable: source, message: 'is empty' }]);
  let secretId = trimmed;
  let rest: string[] = [];
  if (trimmed.startsWith('arn:')) {
    // arn:partition:secretsmanager:region:account:secret:name-suffix[:json-key:stage:id]
    const parts = trimmed.split(':');
    if (parts.length < 7 || parts[2] !== 'secretsmanager' || parts[5] !== 'secret' || !parts[6]) {
      throw new ConfigError([{ variable: source, message: 'is not a Secrets Manager secret ARN' }]);
    }
    secretId = parts.slice(0, 7).join(':');
    rest = parts.slice(7);
  } else if (trimmed.includes(':')) {
    const [name = '', ...tail] = trimmed.split(':');
    secretId = name;
    rest = tail;
  }
  if (rest.length > 3) throw new ConfigError([{ variable: source, message: 'has too many ":" parts (expected <arn>:<json-key>:<version-stage>:<version-id>)' }]);
  const [jsonKey, versionStage, versionId] = rest.map((part) => part || undefined);
  return { variable, source, secretId, jsonKey, versionStage, versionId };
}

/** Every `<VAR>_SECRET_ARN` reference in the environment. */
export function secretReferences(env: Readonly<MutableEnv>): SecretReference[] {
  return Object.entries(env)
    .filter(([name, value]) => name.endsWith(SECRET_SUFFIX) && name.length > SECRET_SUFFIX.length && value !== undefined && value.trim() !== '')
    .map(([name, value]) => parseSecretReference(name, value as string))
    .sort((a, b) => a.variable.localeCompare(b.variable));
}

export type SecretFetcher = (secretId: string, versionStage?: string, versionId?: string) => Promise<string>;

let client: SecretsManagerClient | undefined;

const fetchFromSecretsManager: SecretFetcher = async (secretId, versionStage, versionId) => {
  const { GetSecretValueCommand, SecretsManagerClient } = await import('@aws-sdk/client-secrets-manager');
  client ??= new SecretsManagerClient({ maxAttempts: 3 });
  const response = await client.send(
    new GetSecretValueCommand({ SecretId: secretId, ...(versionStage ? { VersionStage: versionStage } : {}), ...(versionId ? { VersionId: versionId } : {}) }),
  );
  if (response.SecretString !== undefined) return response.SecretString;
  if (response.SecretBinary) return Buffer.from(response.SecretBinary).toString('utf8');
  throw new CallDataError(`secret ${secretId} has no value`, { retryable: false });
};

function pick(reference: SecretReference, secret: string): string {
  if (!reference.jsonKey) return secret;
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    throw new ConfigError([{ variable: reference.source, message: `selects JSON key "${reference.jsonKey}" but the secret is not a JSON object` }]);
  }
  const value = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[reference.jsonKey] : undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new ConfigError([{ variable: reference.source, message: `the secret has no string field "${reference.jsonKey}"` }]);
}

/**
 * Resolves every reference into `env` (default `process.env`). Each distinct secret version is
 * fetched once; all problems are collected and reported together, naming their variables.
 * Returns the names of the variables it set.
 */
export async function resolveSecretsInto(env: MutableEnv = process.env, fetch: SecretFetcher = fetchFromSecretsManager): Promise<string[]> {
  const references = secretReferences(env);
  const fetches = new Map<string, Promise<string>>();
  const problems: { variable: string; message: string }[] = [];
  const values = await Promise.all(
    references.map(async (reference) => {
      const key = JSON.stringify([reference.secretId, reference.versionStage, reference.versionId]);
      let pending = fetches.get(key);
      if (!pending) {
        pending = fetch(reference.secretId, reference.versionStage, reference.versionId);
        fetches.set(key, pending);
      }
      try {
        return pick(reference, await pending);
      } catch (error) {
        if (error instanceof ConfigError) problems.push(...error.problems);
        else {
          const name = (error as { name?: string }).name ?? 'Error';
          problems.push({ variable: reference.source, message: `could not read secret ${reference.secretId} (${name}: ${(error as Error).message})` });
        }
        return undefined;
      }
    }),
  );
  if (problems.length > 0) throw new ConfigError(problems);
  references.forEach((reference, i) => {
    env[reference.variable] = values[i];
  });
  return references.map((r) => r.variable);
}

let resolved: Promise<string[]> | undefined;

/**
 * Resolves the process environment's secret references once per process (Lambda container).
 * A failure is not cached, so the next invocation tries again.
 */
export function resolveSecretEnv(): Promise<string[]> {
  if (!resolved) {
    resolved = resolveSecretsInto(process.env);
    resolved.catch(() => {
      resolved = undefined;
    });
  }
  return resolved;
}

/** For tests: forget what this process resolved. */
export function resetSecretsForTests(): void {
  resolved = undefined;
  client?.destroy();
  client = undefined;
}

/** middy middleware: put `<VAR>_SECRET_ARN` secrets into `<VAR>` before the handler reads its configuration. */
export function secretsFromEnv(): MiddlewareObj {
  return {
    before: async () => {
      await resolveSecretEnv();
    },
  };
}
