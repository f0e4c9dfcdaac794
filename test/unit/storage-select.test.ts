import { describe, expect, it } from 'vitest';
import { backendKind } from '../../functions/storage/select.ts';
import { redactPhone, redactUrl } from '../../functions/shared/redact.ts';

describe('backend selection by location', () => {
  it.each([
    ['s3', 's3'],
    ['mongodb://db:27017/x', 'mongodb'],
    ['mongodb+srv://cluster.example/x', 'mongodb'],
    ['redis://localhost:6379/0', 'redis'],
    ['rediss://cache:6380', 'redis'],
    ['postgres://u:p@h/db', 'postgres'],
    ['postgresql://h/db', 'postgres'],
    ['mysql://u:p@h/db', 'mysql'],
    ['mysql+pymysql://u:p@h/db', 'mysql'],
    ['Call_Metadata', 'local'],
    ['/var/data/calls', 'local'],
    ['S3', 'local'],
    ['http://example.com/x', 'local'],
  ])('selects %s → %s', (location, kind) => {
    expect(backendKind(location)).toBe(kind);
  });
});

describe('redaction', () => {
  it('hides most digits of a phone number', () => {
    expect(redactPhone('+14155550123')).toBe('+141******23');
    expect(redactPhone('+14155550123')).not.toContain('5550');
    expect(redactPhone(undefined)).toBeUndefined();
  });

  it('removes passwords and query tokens from connection URLs', () => {
    expect(redactUrl('postgres://user:hunter2@db:5432/calls?sslpassword=x')).toBe('postgres://user:***@db:5432/calls');
    expect(redactUrl('mysql+pymysql://u:pw@h/db')).not.toContain('pw@');
  });
});
