import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../functions/config/config.ts';
import { ConfigError } from '../../functions/config/errors.ts';
import { jobLoad, liveJobProcesses, loadOptions } from '../../worker/load.ts';

describe('worker load', () => {
  it('keeps LiveKit’s CPU load unless job counting is asked for', () => {
    expect(loadOptions(loadConfig({}).worker)).toEqual({});
    expect(loadOptions(loadConfig({ CALLDATA_WORKER_LOAD: 'cpu' }).worker)).toEqual({});
  });

  it('reports running jobs over the maximum, full at the maximum', () => {
    // Prepare + Act
    const options = loadOptions(loadConfig({ CALLDATA_WORKER_LOAD: 'jobs', CALLDATA_WORKER_MAX_JOBS: '2' }).worker);
    // Assess
    expect(options.loadThreshold).toBe(1);
    expect(jobLoad(1, 1, 2)).toBe(0.5);
    expect(jobLoad(5, 5, 2)).toBe(1);
  });

  it('does not count finished jobs the SDK still lists, nor idle pre-warmed processes', () => {
    expect(jobLoad(4, 1, 4)).toBe(0.25); // dev mode: finished jobs stay listed
    expect(jobLoad(1, 3, 4)).toBe(0.25); // start mode: two idle warm processes
    expect(jobLoad(2, undefined, 4)).toBe(0.5); // no /proc
  });

  it('names a bad variable when the configuration is read', () => {
    expect(() => loadConfig({ CALLDATA_WORKER_LOAD: 'gpu' })).toThrow(ConfigError);
    expect(() => loadConfig({ CALLDATA_WORKER_LOAD: 'gpu' })).toThrow(/CALLDATA_WORKER_LOAD: expected cpu or jobs, got "gpu"/);
    expect(() => loadConfig({ CALLDATA_WORKER_LOAD: 'jobs', CALLDATA_WORKER_MAX_JOBS: '0' })).toThrow(/CALLDATA_WORKER_MAX_JOBS/);
  });

  it('counts the job processes among this process’s children', () => {
    // Prepare: a fake /proc with one job process, one other child, one that vanished
    const root = mkdtempSync(join(tmpdir(), 'proc-'));
    mkdirSync(join(root, 'self/task/100'), { recursive: true });
    writeFileSync(join(root, 'self/task/100/children'), '201 202 203 ');
    mkdirSync(join(root, '201'));
    writeFileSync(join(root, '201/cmdline'), 'node\0/x/agents/dist/ipc/job_proc_lazy_main.js\0/x/agent.ts');
    mkdirSync(join(root, '202'));
    writeFileSync(join(root, '202/cmdline'), 'node\0inference_proc_lazy_main.js');
    // Act + Assess
    expect(liveJobProcesses(root)).toBe(1);
    expect(liveJobProcesses(join(root, 'missing'))).toBeUndefined();
  });
});
