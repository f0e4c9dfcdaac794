/** Synthesizes the real app (infra/app.ts) with given context, for the stack-*.test.ts files. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll } from 'vitest';
import { buildApp } from '../../infra/app.ts';
import type { CallDataStack } from '../../infra/calldata-stack.ts';
import { AwsSolutionsChecks } from '../../infra/nag.ts';

export interface Synthesized {
  app: App;
  stack: CallDataStack;
  template: Template;
  outdir: string;
}

/** The feature flags and context of cdk.json, so the tests synthesize what `cdk synth` does. */
const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> }).context;

/** Cloud assemblies of the importing test file, removed when it is done. */
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Context that every AWS (non-LocalStack) synth in the tests needs. */
export const AWS_BASE = { livekitUrl: 'wss://calls.example.livekit.cloud' } as const;

/**
 * @param bundle run esbuild for the functions (slower); otherwise assets are staged without
 *   bundling, which is what `cdk synth --exclusively` does for stacks it does not deploy.
 */
export function synth(context: Record<string, unknown> = {}, options: { bundle?: boolean } = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'calldata-synth-'));
  outdirs.push(outdir);
  const app = new App({
    outdir,
    // As the CLI does: asset metadata in the template; bundling skipped unless asked for.
    context: { ...CDK_JSON_CONTEXT, 'aws:cdk:enable-asset-metadata': true, ...context, ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) },
  });
  const stack = buildApp(app);
  const template = Template.fromStack(stack);
  return { app, stack, template, outdir };
}

/** cdk-nag AwsSolutions findings that are not acknowledged (with a reason) in the code. */
export function nagViolations(synthesized: Synthesized): { rule: string; paths: string[] }[] {
  const report = new AwsSolutionsChecks(synthesized.app).validateScope(synthesized.stack);
  return report.violations.map((v) => ({ rule: v.ruleName, paths: v.violatingResources.map((r) => r.constructPath ?? r.resourceLogicalId ?? '') }));
}

/** Every resource of a type as [logicalId, resource] pairs. */
export function resourcesOf(template: Template, type: string): [string, { Properties?: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }][] {
  return Object.entries(template.findResources(type));
}

/** The logical id of the single resource whose id starts with `prefix`. */
export function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} starting with ${prefix}, found ${ids.join(', ') || 'none'}`);
  return ids[0] as string;
}
