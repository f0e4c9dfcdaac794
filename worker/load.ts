/**
 * The worker's load as reported to LiveKit, which dispatches a job only to workers whose load
 * is below 1. LiveKit's default is the machine's CPU use, which on a shared host (several
 * workers, a busy CI box) can read 100 % and starve every worker. CALLDATA_WORKER_LOAD=jobs
 * reports running jobs / CALLDATA_WORKER_MAX_JOBS (default 4) instead.
 *
 * Running jobs are counted as the smaller of two over-counts: the SDK's activeJobs (in dev mode
 * it keeps finished jobs listed) and the live job processes forked by this worker (in start mode
 * that includes idle pre-warmed ones).
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { AgentServer, ServerOptions } from '@livekit/agents';
import type { WorkerSettings } from '../functions/config/config.ts';

type LoadOptions = Pick<ConstructorParameters<typeof ServerOptions>[0], 'loadFunc' | 'loadThreshold'>;

/** Live child processes of this process running agents' job entry, or undefined without /proc. */
export function liveJobProcesses(procRoot = '/proc'): number | undefined {
  try {
    let count = 0;
    for (const task of readdirSync(`${procRoot}/self/task`)) {
      let children: string[] = [];
      try {
        children = readFileSync(`${procRoot}/self/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        continue;
      }
      for (const pid of children) {
        try {
          if (readFileSync(`${procRoot}/${pid}/cmdline`, 'utf8').includes('job_proc_lazy_main')) count++;
        } catch {
          // exited meanwhile
        }
      }
    }
    return count;
  } catch {
    return undefined;
  }
}

export function jobLoad(activeJobs: number, liveProcesses: number | undefined, maxJobs: number): number {
  const running = liveProcesses === undefined ? activeJobs : Math.min(activeJobs, liveProcesses);
  return Math.min(1, running / maxJobs);
}

/** The SDK's load options for the configured mode (validated with the rest of the configuration). */
export function loadOptions(worker: Pick<WorkerSettings, 'load' | 'maxJobs'>): LoadOptions {
  if (worker.load === 'cpu') return {};
  const { maxJobs } = worker;
  return {
    loadFunc: async (server: AgentServer) => jobLoad(server.activeJobs.length, liveJobProcesses(), maxJobs),
    loadThreshold: 1,
  };
}
