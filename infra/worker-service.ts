/**
 * The agent worker on ECS Fargate (ARM64), built from the project's Dockerfile. It only needs
 * to reach LiveKit and send fact messages: no inbound ports, a task role that may send to the fact
 * queue and put claim-check payloads, and LiveKit credentials injected from Secrets Manager.
 * Recording commands are the persist function's business, so the worker has no recording queue.
 */
import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { acknowledge, arnFinding } from './nag.ts';
import { importSecret } from './secret-ref.ts';
import { Construct } from 'constructs';
import { PROJECT_ROOT } from './calldata-function.ts';
import { PAYLOAD_PREFIX, type CallDataSettings } from './settings.ts';

export interface WorkerServiceProps {
  settings: CallDataSettings;
  /** Existing VPC (with subnets that reach the internet); a small public-subnet VPC is created otherwise. */
  vpc?: ec2.IVpc;
  subnets?: ec2.SubnetSelection;
  /** The fact queue (CALLDATA_QUEUE_URL). */
  snapshotQueue: sqs.IQueue;
  bucket: s3.IBucket;
  livekitSecret: secretsmanager.ISecret;
  logRetention: logs.RetentionDays;
  removalPolicy: RemovalPolicy;
}

/** The worker's environment (besides secrets): the same variables `npm run worker` reads. */
export function workerEnvironment(props: Pick<WorkerServiceProps, 'settings' | 'snapshotQueue' | 'bucket'>, region: string): Record<string, string> {
  const { settings } = props;
  return {
    CALL_RECORDING: String(settings.callRecording),
    SAVE_METADATA: String(settings.saveMetadata),
    SAVE_TRANSCRIPTION: String(settings.saveTranscription),
    HANGUP_CALL: String(settings.hangupCall),
    ...(settings.timezone ? { TIMEZONE: settings.timezone } : {}),
    ...(settings.livekitUrl ? { LIVEKIT_URL: settings.livekitUrl } : {}),
    CALLDATA_QUEUE_URL: props.snapshotQueue.queueUrl,
    AWS_S3_BUCKET: props.bucket.bucketName,
    AWS_S3_REGION: region,
    ...(settings.s3Endpoint ? { AWS_S3_ENDPOINT: settings.s3Endpoint } : {}),
    ...(settings.answerTimeoutMs !== undefined ? { CALLDATA_ANSWER_TIMEOUT_MS: String(settings.answerTimeoutMs) } : {}),
    ...(settings.agentName ? { LIVEKIT_AGENT_NAME: settings.agentName } : {}),
    ...settings.workerEnvironment,
  };
}

export class WorkerService extends Construct {
  readonly service: ecs.FargateService;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly vpc: ec2.IVpc;

  constructor(scope: Construct, id: string, props: WorkerServiceProps) {
    super(scope, id);
    const { settings } = props;
    const ownVpc = !props.vpc;
    if (props.vpc) {
      this.vpc = props.vpc;
    } else {
      const vpc = new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: 0,
        subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      });
      const flowLogs = new logs.LogGroup(this, 'FlowLogs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
      vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.REJECT });
      this.vpc = vpc;
    }

    const cluster = new ecs.Cluster(this, 'Cluster', { vpc: this.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: settings.workerCpu,
      memoryLimitMiB: settings.workerMemoryMiB,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    const taskRole = this.taskDefinition.taskRole;
    props.snapshotQueue.grantSendMessages(taskRole);
    taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'ConversationPayloads', actions: ['s3:PutObject'], resources: [props.bucket.arnForObjects(`${PAYLOAD_PREFIX}/*`)] }),
    );

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention, removalPolicy: props.removalPolicy });
    this.container = this.taskDefinition.addContainer('worker', {
      image: ecs.ContainerImage.fromAsset(PROJECT_ROOT, { file: 'Dockerfile', platform: Platform.LINUX_ARM64 }),
      command: ['node', 'worker/main.ts', 'start'],
      environment: workerEnvironment(props, this.taskDefinition.stack.region),
      secrets: {
        ...Object.fromEntries(
          Object.entries(settings.workerSecrets).map(([name, reference], i) => {
            const imported = importSecret(this, `WorkerSecret${i}`, reference);
            return [name, ecs.Secret.fromSecretsManager(imported.secret, imported.jsonKey)];
          }),
        ),
        LIVEKIT_API_KEY: ecs.Secret.fromSecretsManager(props.livekitSecret, 'apiKey'),
        LIVEKIT_API_SECRET: ecs.Secret.fromSecretsManager(props.livekitSecret, 'apiSecret'),
      },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'worker', logGroup }),
      // Room for the final snapshot of every call in progress when a task is stopped.
      stopTimeout: Duration.seconds(120),
      // An init process forwards SIGTERM to Node and reaps children (LiveKit job processes).
      linuxParameters: new ecs.LinuxParameters(this, 'Linux', { initProcessEnabled: true }),
    });

    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: this.vpc,
      description: 'calldata worker: no inbound; outbound to LiveKit and AWS APIs',
      allowAllOutbound: true,
    });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: settings.workerDesiredCount,
      assignPublicIp: ownVpc,
      vpcSubnets: props.subnets ?? (ownVpc ? { subnetType: ec2.SubnetType.PUBLIC } : undefined),
      securityGroups: [securityGroup],
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { rollback: true },
      enableExecuteCommand: false,
    });

    acknowledge(this.taskDefinition, {
      id: 'AwsSolutions-ECS2',
      reason: 'Only non-secret settings (flags, queue URLs, bucket, LiveKit URL) are environment variables; the LiveKit key and secret are ECS secrets from Secrets Manager.',
    });
    acknowledge(
      taskRole,
      { id: `AwsSolutions-IAM5[${arnFinding(props.bucket, `/${PAYLOAD_PREFIX}/*`)}]`, reason: 'Claim-check payload keys are <prefix>/<call id>/<seq>.json with call ids chosen per call; the grant is put-only and limited to that prefix.' },
    );
    acknowledge(this.taskDefinition.obtainExecutionRole(), {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken has no resource-level permissions (CDK\'s default execution role policy for pulling the image).',
    });
  }
}
