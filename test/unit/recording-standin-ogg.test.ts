import { describe, expect, it } from 'vitest';
import { inspectOgg, makeOgg, oggCrc } from '../support/egress-standin.ts';

describe('the OGG the egress stand-in uploads', () => {
  it('is a well-formed Ogg Opus stream with correct page checksums', () => {
    // Prepare + Act
    const ogg = makeOgg(50);
    const info = inspectOgg(ogg);
    // Assess
    expect(ogg.subarray(0, 4).toString('ascii')).toBe('OggS');
    expect(info).toEqual({ pages: 3, opus: true, durationMs: 1_000 });
  });

  it('is rejected by the checker when a byte is corrupted', () => {
    const ogg = makeOgg(10);
    ogg[ogg.length - 1] = (ogg[ogg.length - 1] ?? 0) ^ 0xff;
    expect(() => inspectOgg(ogg)).toThrow(/bad CRC/);
  });

  it('uses the Ogg CRC-32 (0x04c11db7, unreflected)', () => {
    expect(oggCrc(new Uint8Array([]))).toBe(0);
    expect(oggCrc(Buffer.from('OggS'))).toBe(0x5fb0a94f);
  });
});
