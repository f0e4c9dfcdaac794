/**
 * The shared defaults of every calldata Lambda: Node.js 24 on ARM64, bundled by the locally
 * installed esbuild (never Docker) into one ESM file with a source map, an explicit log group
 * with retention, JSON logs, and an execution role that starts with nothing but permission to
 * write to that log group.
 */
import { fileURLToPath } from 'node:url';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * esbuild emits ESM; a few bundled CommonJS dependencies still call require() for Node
 * built-ins, which ESM lacks, so the banner defines one.
 */
export const ESM_REQUIRE_BANNER = "import { createRequire as __calldataCreateRequire } from 'node:module'; const require = __calldataCreateRequire(import.meta.url);";

/**
 * Optional peer dependencies of the database drivers that this project never uses; left out of
 * the bundle (the drivers load them inside try/catch).
 */
export const UNUSED_OPTIONAL_MODULES = [
  'kerberos',
  '@mongodb-js/zstd',
  '@aws-sdk/credential-providers',
  'gcp-metadata',
  'snappy',
  'socks',
  'aws4',
  'mongodb-client-encryption',
  'pg-native',
  'cloudflare:sockets',
];

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
  readonly function: nodejs.NodejsFunction;
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

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: `${PROJECT_ROOT}${props.entry}`,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: `${PROJECT_ROOT}package-lock.json`,
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
        // Stack traces point into the TypeScript sources through the bundled source map.
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      bundling: {
        forceDockerBundling: false,
        format: nodejs.OutputFormat.ESM,
        target: 'node24',
        platform: 'node',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        sourceMapMode: nodejs.SourceMapMode.DEFAULT,
        sourcesContent: false,
        banner: ESM_REQUIRE_BANNER,
        // Bundle the AWS SDK too: versions pinned by package-lock.json, not the runtime's copy.
        bundleAwsSDK: true,
        externalModules: UNUSED_OPTIONAL_MODULES,
        metafile: false,
      },
    });
  }
}
