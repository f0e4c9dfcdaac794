/**
 * cdk-nag 3 runs as a CDK validation plugin (`Validations.of(app).addPlugins(...)`) and is
 * acknowledged per finding with `Validations.of(construct).acknowledge({ id, reason })`.
 * cdk-nag is CommonJS with re-exports Node's ESM loader cannot name, hence the default import.
 */
import { Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import nag from 'cdk-nag';
import type { IConstruct } from 'constructs';

export const { AwsSolutionsChecks } = nag;

export interface Acknowledgment {
  id: string;
  reason: string;
}

export function acknowledge(scope: IConstruct, ...rules: Acknowledgment[]): void {
  Validations.of(scope).acknowledge(...rules);
}

/** The finding suffix cdk-nag uses for `<logical id>.Arn` followed by `suffix`, e.g. `Resource::<Bucket1234.Arn>/*`. */
export function arnFinding(resource: IConstruct, suffix: string): string {
  const cfn = (resource.node.defaultChild ?? resource) as CfnElement;
  const stack = Stack.of(resource);
  return `Resource::<${stack.resolve(stack.getLogicalId(cfn)) as string}.Arn>${suffix}`;
}
