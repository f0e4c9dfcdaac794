/**
 * Call insights as pure rules: why a call ended (end-reason.ts), how fast the agent answered
 * (latency.ts), and what the models used and cost (usage.ts). Plain values in, plain values out:
 * no LiveKit or Lambda types, so the domain layer stays free of SDKs.
 */
export * from './end-reason.ts';
export * from './latency.ts';
export * from './usage.ts';
