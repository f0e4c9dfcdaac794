import middy from '@middy/core';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/config/errors.ts';
import { parseSecretReference, resolveSecretsInto, secretReferences, type SecretFetcher } from '../../functions/config/secrets.ts';

const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:calldata/livekit-AbCdEf';

function fakeSecrets(values: Record<string, string>): { fetch: SecretFetcher; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    fetch: async (secretId, versionStage) => {
      calls.push(versionStage ? `${secretId}@${versionStage}` : secretId);
      const value = values[secretId];
      if (value === undefined) throw Object.assign(new Error('Secrets Manager cannot find the specified secret.'), { name: 'ResourceNotFoundException' });
      return value;
    },
  };
}

describe('secret references', () => {
  it('parse ARNs and names with optional JSON key, version stage and version id (the ECS valueFrom syntax)', () => {
    // Prepare / Act / Assess
    expect(parseSecretReference('LIVEKIT_API_KEY_SECRET_ARN', `${ARN}:apiKey::`)).toMatchObject({ variable: 'LIVEKIT_API_KEY', secretId: ARN, jsonKey: 'apiKey', versionStage: undefined });
    expect(parseSecretReference('METADATA_LOCATION_SECRET_ARN', ARN)).toMatchObject({ variable: 'METADATA_LOCATION', secretId: ARN, jsonKey: undefined });
    expect(parseSecretReference('X_SECRET_ARN', 'calldata/db:url:AWSPREVIOUS')).toMatchObject({ secretId: 'calldata/db', jsonKey: 'url', versionStage: 'AWSPREVIOUS' });
  });

  it('reject a reference that is not a Secrets Manager ARN, naming the variable', () => {
    // Prepare / Act
    const parse = () => parseSecretReference('LIVEKIT_API_SECRET_SECRET_ARN', 'arn:aws:s3:::bucket');

    // Assess
    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(/LIVEKIT_API_SECRET_SECRET_ARN/);
  });

  it('find only non-empty <VAR>_SECRET_ARN variables', () => {
    // Prepare / Act
    const refs = secretReferences({ A_SECRET_ARN: ARN, B_SECRET_ARN: ' ', _SECRET_ARN: ARN, PLAIN: 'x' });

    // Assess
    expect(refs.map((r) => r.variable)).toEqual(['A']);
  });
});

describe('resolving secrets into the environment', () => {
  it('writes each referenced value into its variable and fetches each secret once', async () => {
    // Prepare
    const secrets = fakeSecrets({ [ARN]: JSON.stringify({ apiKey: 'APIkey123', apiSecret: 's3cr3t' }), 'calldata/db': 'postgres://u:p@db/calldata' });
    const env: Record<string, string | undefined> = {
      LIVEKIT_API_KEY_SECRET_ARN: `${ARN}:apiKey::`,
      LIVEKIT_API_SECRET_SECRET_ARN: `${ARN}:apiSecret::`,
      METADATA_LOCATION_SECRET_ARN: 'calldata/db',
    };

    // Act
    const set = await resolveSecretsInto(env, secrets.fetch);

    // Assess
    expect(set).toEqual(['LIVEKIT_API_KEY', 'LIVEKIT_API_SECRET', 'METADATA_LOCATION']);
    expect(env).toMatchObject({ LIVEKIT_API_KEY: 'APIkey123', LIVEKIT_API_SECRET: 's3cr3t', METADATA_LOCATION: 'postgres://u:p@db/calldata' });
    expect(secrets.calls.sort()).toEqual([ARN, 'calldata/db'].sort());
  });

  it('reports every unreadable secret together, naming the variables and never the values', async () => {
    // Prepare
    const secrets = fakeSecrets({ [ARN]: JSON.stringify({ apiKey: 'APIkey123' }), 'calldata/plain': 'not json' });
    const env: Record<string, string | undefined> = {
      LIVEKIT_API_SECRET_SECRET_ARN: `${ARN}:apiSecret::`,
      METADATA_LOCATION_SECRET_ARN: 'calldata/missing',
      TRANSCRIPTION_LOCATION_SECRET_ARN: 'calldata/plain:url',
    };

    // Act
    const error = await resolveSecretsInto(env, secrets.fetch).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).problems.map((p) => p.variable).sort();
    expect(variables).toEqual(['LIVEKIT_API_SECRET_SECRET_ARN', 'METADATA_LOCATION_SECRET_ARN', 'TRANSCRIPTION_LOCATION_SECRET_ARN']);
    expect((error as Error).message).toContain('ResourceNotFoundException');
    expect((error as Error).message).not.toContain('APIkey123');
    expect((error as Error).message).not.toContain('not json');
    expect(env.LIVEKIT_API_SECRET).toBeUndefined();
  });

  it('does nothing without references', async () => {
    // Prepare
    const secrets = fakeSecrets({});

    // Act
    const set = await resolveSecretsInto({ LIVEKIT_API_KEY: 'plain' }, secrets.fetch);

    // Assess
    expect(set).toEqual([]);
    expect(secrets.calls).toEqual([]);
  });

  it('resolves before a middy handler reads its configuration', async () => {
    // Prepare
    const secrets = fakeSecrets({ 'calldata/tz': 'Asia/Kolkata' });
    const env: Record<string, string | undefined> = { TIMEZONE_SECRET_ARN: 'calldata/tz' };
    const seen: (string | undefined)[] = [];
    const handler = middy(async () => {
      seen.push(env.TIMEZONE);
      return 'ok';
    }).use({ before: async () => void (await resolveSecretsInto(env, secrets.fetch)) });

    // Act
    await handler({}, {} as never);

    // Assess
    expect(seen).toEqual(['Asia/Kolkata']);
  });
});
