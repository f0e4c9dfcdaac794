/**
 * Secrets given by reference in the settings: `<ARN or name>[:<json-key>]`, the ECS
 * `valueFrom` syntax that functions/config/secrets.ts also reads at runtime.
 */
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

export interface ImportedSecret {
  secret: secretsmanager.ISecret;
  /** The ARN or name as given (what the functions pass to GetSecretValue). */
  secretId: string;
  jsonKey?: string;
}

/** Splits `<arn-or-name>[:json-key]` into the secret id and the optional key. */
export function splitSecretRef(value: string): { id: string; jsonKey?: string } {
  if (value.startsWith('arn:')) {
    const parts = value.split(':');
    return { id: parts.slice(0, 7).join(':'), jsonKey: parts[7] || undefined };
  }
  const [id = '', jsonKey] = value.split(':');
  return { id, jsonKey: jsonKey || undefined };
}

/** An existing secret named by ARN (complete or partial) or by name. */
export function importSecret(scope: Construct, id: string, value: string): ImportedSecret {
  const { id: secretId, jsonKey } = splitSecretRef(value);
  let secret: secretsmanager.ISecret;
  if (secretId.startsWith('arn:')) {
    // A complete ARN ends in the 6-character suffix Secrets Manager adds to the name.
    secret = /-[A-Za-z0-9]{6}$/.test(secretId)
      ? secretsmanager.Secret.fromSecretCompleteArn(scope, id, secretId)
      : secretsmanager.Secret.fromSecretPartialArn(scope, id, secretId);
  } else {
    secret = secretsmanager.Secret.fromSecretNameV2(scope, id, secretId);
  }
  return { secret, secretId, jsonKey };
}

/** The `<VAR>_SECRET_ARN` value for a secret id (ARN or name) and optional JSON field. */
export function secretReference(secretId: string, jsonKey?: string): string {
  return jsonKey ? `${secretId}:${jsonKey}::` : secretId;
}
