/**
 * The shared defaults of every calldata Lambda: Node.js 24 on ARM64, code built by the locally
 * installed esbuild (never Docker) into an ESM entry plus one chunk per lazily imported part
 * (infra/bundle.ts), with source maps, an explicit log group with retention, JSON logs, and an
 * execution role that starts with nothing but permission to write to that log group.
 */
import { AssetHashType, DockerImage, type Duration, type ILocalBundling, type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bundleFunction, PROJECT_ROOT } from './bundle.ts';

export { PROJECT_ROOT };

/**
 * Builds the function with the local esbuild (infra/bundle.ts). A class, not an object literal,
 * because CDK caches staged assets by the JSON of their bundling options: the entry must be in
 * it, or every function would get the first one's bundle.
 */
class LocalEsbuild implements ILocalBundling {
  readonly entry: string;
  constructor(entry: string) {
    this.entry = entry;
  }
  tryBundle(outputDir: string): boolean {
    bundleFunction(this.entry, outputDir);
    return true;
  }
}

/**
 * The function's code asset, bundled locally into CDK's output directory. Hashing the output
 * (as NodejsFunction does) keeps the project tree out of the fingerprint; a synth that skips
 * bundling (`cdk synth --exclusively` of another stack) never builds.
 */
function functionCode(entry: string): lambda.Code {
  return lambda.Code.fromAsset(PROJECT_ROOT, {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type; never pulled, because local bundling always succeeds or throws.
      image: DockerImage.fromRegistry('dummy'),
      local: new LocalEsbuild(entry),
    },
  });
}

export interface CallDataFunctionProps {
  /** Path of the handler file, relative to the project root (exports `handler`). */
  entry: string;
  description: string;
  environment: Record<string, string>;
  timeout: Duration;
  memorySize?: number;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
  vpc?: lambda.FunctionProps['vpc'];
  vpcSubnets?: lambda.FunctionProps['vpcSubnets'];
  securityGroups?: lambda.FunctionProps['securityGroups'];
  serviceName: string;
}

export class CallDataFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: CallDataFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.removalPolicy,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of ${props.description}`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn, `${this.logGroup.logGroupArn}:log-stream:*`],
      }),
    );
    if (props.vpc) {
      // What AWSLambdaVPCAccessExecutionRole grants, without the AWS managed policy.
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'VpcNetworkInterfaces',
          actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
          resources: ['*'],
        }),
      );
    }

    this.function = new lambda.Function(this, 'Function', {
      code: functionCode(props.entry),
      handler: 'index.handler',
      description: props.description,
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        // Stack traces point into the TypeScript sources through the bundled source maps.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
    });
  }
}
