/**
 * The deployed functions as bench/cold.ts measures them: their bundles, built by synthesizing the
 * real app (infra/app.ts, the same code path as `cdk deploy`), and each function's environment
 * exactly as the template sets it for a given location, with CloudFormation references (queue
 * URLs, the bucket, secret ARNs) replaced by plausible values. Nothing is resolved at init, so
 * none of them is contacted.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../../infra/app.ts';
import { PROJECT_ROOT } from '../../infra/bundle.ts';

export const FUNCTIONS = ['Persist', 'Sweeper', 'Webhook', 'Recording'] as const;
export type FunctionName = (typeof FUNCTIONS)[number];

/** The entry of each function (as infra/calldata-stack.ts declares it) is found through the template. */
export interface DeployedFunction {
  name: FunctionName;
  /** The staged asset directory: `index.mjs` and `chunks/`. */
  assetDir: string;
  env: Record<string, string>;
}

interface TemplateResource {
  Type: string;
  Properties?: { Environment?: { Variables?: Record<string, unknown> } };
  Metadata?: Record<string, string>;
}

const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;

/** A bench deploy: every function present, recording on, no worker. */
const BASE_CONTEXT = { deployWorker: false, callRecording: true, livekitUrl: 'wss://bench.example.livekit.cloud' } as const;

/** A value for a variable whose template value is a CloudFormation reference. */
function placeholder(variable: string): string {
  if (variable.endsWith('_SECRET_ARN')) return 'arn:aws:secretsmanager:us-east-1:000000000000:secret:calldata-bench-AbCdEf:value';
  if (variable.endsWith('_URL')) return `https://sqs.us-east-1.amazonaws.com/000000000000/calldata-bench-${variable.toLowerCase()}`;
  if (variable.endsWith('_REGION')) return 'us-east-1';
  return 'calldata-bench-placeholder';
}

/** Cloud assemblies written by this process (removeSynthesized deletes them). */
const outdirs: string[] = [];

function synthesize(context: Record<string, unknown>, bundle: boolean): { outdir: string; resources: Record<string, TemplateResource> } {
  const outdir = mkdtempSync(join(tmpdir(), 'calldata-cold-'));
  outdirs.push(outdir);
  const app = new App({
    outdir,
    context: { ...CDK_JSON_CONTEXT, 'aws:cdk:enable-asset-metadata': true, ...BASE_CONTEXT, ...context, ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }) },
  });
  const stack = buildApp(app);
  app.synth();
  const template = JSON.parse(readFileSync(join(outdir, stack.templateFile), 'utf8')) as { Resources: Record<string, TemplateResource> };
  return { outdir, resources: template.Resources };
}

function functionResource(resources: Record<string, TemplateResource>, name: FunctionName): TemplateResource {
  const found = Object.entries(resources).filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(`${name}Function`));
  const [only] = found;
  if (found.length !== 1 || !only) throw new Error(`expected one ${name} function in the synthesized template, found ${found.length}`);
  return only[1];
}

/** Builds every function's bundle the way the stack does; returns the asset directories. */
export function buildDeployedBundles(): Record<FunctionName, string> {
  const { outdir, resources } = synthesize({}, true);
  const dirs = {} as Record<FunctionName, string>;
  for (const name of FUNCTIONS) {
    const path = functionResource(resources, name).Metadata?.['aws:asset:path'];
    if (!path) throw new Error(`the ${name} function has no asset path in the template`);
    dirs[name] = join(outdir, path);
  }
  return dirs;
}

/** Each function's environment as the stack sets it when both locations are `location`. */
export function deployedEnvironments(location: string): Record<FunctionName, Record<string, string>> {
  const { resources } = synthesize({ metadataLocation: location, transcriptionLocation: location, saveMetadata: true, saveTranscription: true }, false);
  const envs = {} as Record<FunctionName, Record<string, string>>;
  for (const name of FUNCTIONS) {
    const variables = functionResource(resources, name).Properties?.Environment?.Variables ?? {};
    envs[name] = Object.fromEntries(Object.entries(variables).map(([variable, value]) => [variable, typeof value === 'string' ? value : placeholder(variable)]));
  }
  return envs;
}

export function removeSynthesized(): void {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
