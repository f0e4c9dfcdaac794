/**
 * CDK app entry (`cdk synth|deploy`, see cdk.json): reads the deploy settings from CDK context
 * only (never the environment), builds the stack, and runs cdk-nag's AwsSolutions checks on every synth.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from './nag.ts';
import { CallDataStack } from './calldata-stack.ts';
import { readSettings, SettingsError } from './settings.ts';

export const DEFAULT_STACK_NAME = 'CallData';

export function buildApp(app: App): CallDataStack {
  const settings = readSettings({ context: (key) => app.node.tryGetContext(key) });
  const stackName = String(app.node.tryGetContext('stackName') ?? DEFAULT_STACK_NAME);
  const stack = new CallDataStack(app, stackName, {
    settings,
    description: 'calldata: call recordings, metadata and transcripts for LiveKit voice agents (worker -> SQS -> Lambda -> storage)',
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return stack;
}

if (import.meta.main) {
  const app = new App();
  try {
    buildApp(app);
  } catch (error) {
    if (error instanceof SettingsError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  app.synth();
}
