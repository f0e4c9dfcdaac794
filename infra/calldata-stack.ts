/**
 * The whole call-data pipeline on AWS. Every party that learns something about a call sends
 * fact messages to one queue; the persist Lambda merges them into the stored record and asks the
 * recording Lambda for what the merged record calls for:
 *
 *   worker (ECS Fargate, optional) ──┐
 *   LiveKit webhooks ──HTTPS──▶ webhook Lambda (function URL) ──┤
 *   recording Lambda (egress results) ──┤
 *   sweeper Lambda (EventBridge, every 5 min) ──┴──▶ snapshot (fact) queue ──▶ persist Lambda ──▶ storage backends
 *                                                         persist Lambda ──▶ recording queue ──▶ recording Lambda ──▶ LiveKit egress ──▶ recordings bucket
 *
 * Each queue has a dead-letter queue with an alarm on its depth. Secrets (LiveKit credentials,
 * database URLs with passwords, egress upload keys) stay in Secrets Manager: functions get
 * `<VAR>_SECRET_ARN` references and read the values at runtime (functions/config/secrets.ts);
 * the worker gets them as ECS secrets.
 */
import { existsSync } from 'node:fs';
import { Annotations, Aws, CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as snsSubscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { CallDataFunction, PROJECT_ROOT } from './calldata-function.ts';
import { acknowledge, arnFinding } from './nag.ts';
import { importSecret, secretReference } from './secret-ref.ts';
import { DISCARD_HOLD_DAYS, DISCARD_PREFIX, isDatabaseUrl, OPEN_MARKER_PREFIX, PAYLOAD_PREFIX, recordsInBucket, SWEEP_INTERVAL_MINUTES, type CallDataSettings } from './settings.ts';
import { WorkerService } from './worker-service.ts';

export const ENTRIES = {
  persist: 'functions/persist/handler.ts',
  recording: 'functions/recording/handler.ts',
  webhook: 'functions/webhook/handler.ts',
  sweeper: 'functions/sweeper/handler.ts',
} as const;

export interface CallDataStackProps extends StackProps {
  settings: CallDataSettings;
}

interface QueuePair {
  queue: sqs.Queue;
  deadLetterQueue: sqs.Queue;
}

export class CallDataStack extends Stack {
  readonly settings: CallDataSettings;
  readonly bucket: s3.Bucket;
  readonly snapshots: QueuePair;
  readonly recordings: QueuePair;
  readonly livekitSecret: secretsmanager.ISecret;
  readonly persist: CallDataFunction;
  readonly recording?: CallDataFunction;
  readonly webhook?: CallDataFunction;
  readonly webhookUrl?: lambda.FunctionUrl;
  readonly sweeper?: CallDataFunction;
  readonly sweepSchedule?: events.Rule;
  readonly worker?: WorkerService;

  constructor(scope: Construct, id: string, props: CallDataStackProps) {
    super(scope, id, props);
    const settings = (this.settings = props.settings);
    const removalPolicy = settings.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const logRetention = settings.logRetentionDays as logs.RetentionDays;

    // --- storage --------------------------------------------------------------------------
    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ id: 'ExpireAccessLogs', expiration: Duration.days(365) }],
      removalPolicy,
    });
    acknowledge(accessLogs, { id: 'AwsSolutions-S1', reason: 'This is the server access log bucket of the recordings bucket; logging it into itself would loop.' });

    const lifecycleRules: s3.LifecycleRule[] = [
      { id: 'AbortIncompleteUploads', abortIncompleteMultipartUploadAfter: Duration.days(7) },
      { id: 'ExpireConversationPayloads', prefix: `${PAYLOAD_PREFIX}/`, expiration: Duration.days(settings.payloadExpirationDays) },
      // Recordings of never-answered calls wait here longer than any queue keeps a message (a late
      // answer fact restores them), then go. The sweeper purges the same prefix where no lifecycle runs.
      { id: 'ExpireDiscardedRecordings', prefix: `${DISCARD_PREFIX}/`, expiration: Duration.days(DISCARD_HOLD_DAYS) },
    ];
    if (settings.recordingExpirationDays > 0) {
      lifecycleRules.push({ id: 'ExpireRecordings', expiration: Duration.days(settings.recordingExpirationDays) });
    }
    this.bucket = new s3.Bucket(this, 'Recordings', {
      bucketName: settings.bucketName,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'recordings/',
      lifecycleRules,
      removalPolicy,
    });

    // --- queues ---------------------------------------------------------------------------
    this.snapshots = this.queuePair('Snapshots', settings.visibilityTimeoutSeconds, settings, removalPolicy);
    this.recordings = this.queuePair('Recording', settings.recordingVisibilityTimeoutSeconds, settings, removalPolicy);

    // --- secrets --------------------------------------------------------------------------
    let livekitSecretId: string;
    if (settings.livekitSecret) {
      const imported = importSecret(this, 'LiveKitCredentials', settings.livekitSecret);
      this.livekitSecret = imported.secret;
      livekitSecretId = imported.secretId;
    } else {
      const created = new secretsmanager.Secret(this, 'LiveKitCredentials', {
        description: 'LiveKit API key and secret for the calldata functions and worker: {"apiKey": "...", "apiSecret": "..."}. Set it after the first deploy (docs/deploy.md).',
        generateSecretString: {
          secretStringTemplate: JSON.stringify({ apiKey: 'REPLACE_WITH_LIVEKIT_API_KEY' }),
          generateStringKey: 'apiSecret',
          excludePunctuation: true,
        },
        removalPolicy,
      });
      acknowledge(created, { id: 'AwsSolutions-SMG4', reason: 'LiveKit API keys are issued and rotated in LiveKit (cloud console or livekit.yaml), not by a Secrets Manager rotation Lambda.' });
      this.livekitSecret = created;
      livekitSecretId = created.secretArn;
    }
    const livekitEnv = {
      LIVEKIT_API_KEY_SECRET_ARN: secretReference(livekitSecretId, 'apiKey'),
      LIVEKIT_API_SECRET_SECRET_ARN: secretReference(livekitSecretId, 'apiSecret'),
      ...(settings.livekitUrl ? { LIVEKIT_URL: settings.livekitUrl } : {}),
    };

    const locationSecrets: Partial<Record<'METADATA_LOCATION' | 'TRANSCRIPTION_LOCATION', secretsmanager.ISecret>> = {};
    const locationEnv: Record<string, string> = {};
    for (const [key, variable, secretKey, id] of [
      ['metadataLocation', 'METADATA_LOCATION', 'metadataLocationSecret', 'MetadataLocationSecret'],
      ['transcriptionLocation', 'TRANSCRIPTION_LOCATION', 'transcriptionLocationSecret', 'TranscriptionLocationSecret'],
    ] as const) {
      const reference = settings[secretKey];
      if (reference) {
        const imported = importSecret(this, id, reference);
        locationSecrets[variable] = imported.secret;
        locationEnv[`${variable}_SECRET_ARN`] = secretReference(imported.secretId, imported.jsonKey);
      } else {
        const location = settings[key];
        locationEnv[variable] = location;
        if (location !== 's3' && !isDatabaseUrl(location) && !settings.localstack) {
          Annotations.of(this).addWarning(
            `${variable}=${location} is a local folder: on Lambda that is the /tmp of one container and is lost. Use s3 or a database URL.`,
          );
        }
      }
    }
    const egressSecret = settings.egressS3Secret ? importSecret(this, 'EgressS3Credentials', settings.egressS3Secret) : undefined;
    if (settings.callRecording && !egressSecret && !settings.localstack) {
      Annotations.of(this).addWarning(
        'callRecording is on without egressS3Secret: LiveKit egress can upload recordings only if it runs with AWS credentials of its own (self-hosted egress with an IAM role). For LiveKit Cloud, pass egressS3Secret (docs/deploy.md).',
      );
    }

    // --- shared function settings ---------------------------------------------------------
    const s3Env: Record<string, string> = {
      AWS_S3_BUCKET: this.bucket.bucketName,
      AWS_S3_REGION: Aws.REGION,
      ...(settings.s3Endpoint ? { AWS_S3_ENDPOINT: settings.s3Endpoint } : {}),
      // LocalStack serves S3 on one host:port, so buckets go in the path.
      ...(settings.localstack ? { AWS_S3_FORCE_PATH_STYLE: 'true' } : {}),
    };
    const flagsEnv: Record<string, string> = {
      CALL_RECORDING: String(settings.callRecording),
      SAVE_METADATA: String(settings.saveMetadata),
      SAVE_TRANSCRIPTION: String(settings.saveTranscription),
      ...(settings.timezone ? { TIMEZONE: settings.timezone } : {}),
    };
    // The functions that render metadata from records (persist; the sweeper reads them through the
    // same record model) turn usage into `estimated_cost` with it. The deployed worker only sends facts.
    const priceEnv: Record<string, string> = settings.priceTable ? { CALLDATA_PRICE_TABLE: settings.priceTable } : {};
    let vpc: ec2.IVpc | undefined;
    let vpcSubnets: ec2.SubnetSelection | undefined;
    let securityGroups: ec2.ISecurityGroup[] | undefined;
    if (settings.vpcId) {
      vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', { vpcId: settings.vpcId, availabilityZones: this.availabilityZones });
      vpcSubnets = { subnets: settings.subnetIds.map((subnetId, i) => ec2.Subnet.fromSubnetId(this, `Subnet${i}`, subnetId)) };
      securityGroups =
        settings.securityGroupIds.length > 0
          ? settings.securityGroupIds.map((sg, i) => ec2.SecurityGroup.fromSecurityGroupId(this, `SecurityGroup${i}`, sg))
          : [new ec2.SecurityGroup(this, 'PersistSecurityGroup', { vpc, description: 'calldata persist function: outbound to the databases only', allowAllOutbound: true })];
    }

    // --- functions ------------------------------------------------------------------------
    // Only persist writes call records; the sweeper reads them (the primary location: the first
    // one configured), so both get the whole location configuration, its secrets and the VPC.
    // Webhook and recording store nothing: they send what they learn as fact messages to the
    // fact queue, and need neither the locations nor the VPC.
    const vpcProps = { vpc, vpcSubnets, securityGroups };
    const factQueueEnv = { CALLDATA_QUEUE_URL: this.snapshots.queue.queueUrl };
    const readLocationSecrets = (fn: CallDataFunction) => {
      for (const secret of Object.values(locationSecrets)) secret.grantRead(fn.role);
    };
    // The S3 backend deletes a call's open marker once the call is final (persist), or when a
    // sweep finds one left behind (sweeper); nothing else in the bucket.
    const deleteOpenMarkers = (fn: CallDataFunction) => {
      if (!recordsInBucket(settings)) return;
      fn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'DeleteOpenCallMarkers', actions: ['s3:DeleteObject'], resources: [this.bucket.arnForObjects(`${OPEN_MARKER_PREFIX}/*`)] }),
      );
      acknowledge(fn.role, {
        id: `AwsSolutions-IAM5[${arnFinding(this.bucket, `/${OPEN_MARKER_PREFIX}/*`)}]`,
        reason: 'Open-call markers are keyed <prefix>/<call id> with call ids chosen per call; the delete is limited to that prefix.',
      });
    };
    const livekitEgressEnv = {
      ...livekitEnv,
      ...(egressSecret
        ? {
            AWS_S3_ACCESS_KEY_ID_SECRET_ARN: secretReference(egressSecret.secretId, 'accessKeyId'),
            AWS_S3_SECRET_ACCESS_KEY_SECRET_ARN: secretReference(egressSecret.secretId, 'secretAccessKey'),
          }
        : {}),
    };

    this.persist = new CallDataFunction(this, 'Persist', {
      entry: ENTRIES.persist,
      description: 'calldata persist: fact queue -> merged call records in storage; recording commands -> recording queue',
      serviceName: 'calldata-persist',
      timeout: Duration.seconds(settings.persistTimeoutSeconds),
      logRetention,
      removalPolicy,
      ...vpcProps,
      environment: {
        ...flagsEnv,
        ...priceEnv,
        ...locationEnv,
        ...s3Env,
        // With a queue URL the recording commands go to the recording queue, never in-process.
        ...factQueueEnv,
        ...(settings.callRecording ? { CALLDATA_RECORDING_QUEUE_URL: this.recordings.queue.queueUrl } : {}),
        CALLDATA_DEAD_LETTER_QUEUE_URL: this.snapshots.deadLetterQueue.queueUrl,
      },
    });
    this.grantObjects(this.persist.role, ['s3:GetObject', 's3:PutObject']);
    deleteOpenMarkers(this.persist);
    this.snapshots.deadLetterQueue.grantSendMessages(this.persist.role);
    if (settings.callRecording) this.recordings.queue.grantSendMessages(this.persist.role);
    readLocationSecrets(this.persist);
    this.persist.function.addEventSource(
      new SqsEventSource(this.snapshots.queue, {
        batchSize: settings.batchSize,
        maxBatchingWindow: settings.maxBatchingWindowSeconds > 0 ? Duration.seconds(settings.maxBatchingWindowSeconds) : undefined,
        reportBatchItemFailures: true,
        maxConcurrency: settings.persistMaxConcurrency,
      }),
    );

    const hasEntry = (entry: string) => existsSync(`${PROJECT_ROOT}${entry}`);
    // Egress results, discards and LiveKit's events are facts: sent to the fact queue like the worker's.
    const sendFacts = (fn: CallDataFunction) => this.snapshots.queue.grantSendMessages(fn.role);

    if (settings.callRecording) {
      if (hasEntry(ENTRIES.recording)) {
        this.recording = new CallDataFunction(this, 'Recording', {
          entry: ENTRIES.recording,
          description: 'calldata recording: starts, finishes, discards and restores LiveKit egress recordings',
          serviceName: 'calldata-recording',
          timeout: Duration.seconds(settings.recordingTimeoutSeconds),
          logRetention,
          removalPolicy,
          environment: { ...flagsEnv, ...s3Env, ...livekitEgressEnv, ...factQueueEnv },
        });
        // Recording state objects and recordings are read, written, moved and deleted (discard, restore).
        this.grantObjects(this.recording.role, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']);
        this.livekitSecret.grantRead(this.recording.role);
        egressSecret?.secret.grantRead(this.recording.role);
        sendFacts(this.recording);
        this.recording.function.addEventSource(
          new SqsEventSource(this.recordings.queue, {
            batchSize: Math.min(settings.batchSize, 10),
            reportBatchItemFailures: true,
            maxConcurrency: settings.recordingMaxConcurrency,
          }),
        );
      } else {
        Annotations.of(this).addWarning(`${ENTRIES.recording} does not exist yet: the recording function is not part of this synth.`);
      }
    }

    if (hasEntry(ENTRIES.webhook)) {
      this.webhook = new CallDataFunction(this, 'Webhook', {
        entry: ENTRIES.webhook,
        description: 'calldata webhook: verifies LiveKit webhooks and sends what they say as call facts',
        serviceName: 'calldata-webhook',
        timeout: Duration.seconds(settings.webhookTimeoutSeconds),
        logRetention,
        removalPolicy,
        // The API key and secret verify LiveKit's signatures; the bucket settings serve the fact
        // sink (claim checks) and the configuration's checks.
        environment: { ...flagsEnv, ...s3Env, ...livekitEnv, ...factQueueEnv },
      });
      this.livekitSecret.grantRead(this.webhook.role);
      sendFacts(this.webhook);
      // LiveKit cannot sign AWS requests: the URL is public and the function rejects every
      // request whose LiveKit signature (Authorization JWT with the body's sha256) does not verify.
      this.webhookUrl = this.webhook.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE, invokeMode: lambda.InvokeMode.BUFFERED });
      new CfnOutput(this, 'WebhookUrl', { value: this.webhookUrl.url, description: 'Set this as the webhook URL in LiveKit (project settings or livekit.yaml webhook.urls).' });
    } else {
      Annotations.of(this).addWarning(`${ENTRIES.webhook} does not exist yet: the webhook function is not part of this synth.`);
    }

    // --- sweeper --------------------------------------------------------------------------
    // Closes calls whose worker was lost and whose room_finished webhook never came: quiet for
    // CALLDATA_SWEEP_AFTER_MS and their LiveKit room gone. It needs LiveKit to ask.
    if (!settings.livekitUrl) {
      Annotations.of(this).addWarning('The sweeper is not deployed without livekitUrl: calls whose worker and room_finished webhook were both lost stay open.');
    } else if (hasEntry(ENTRIES.sweeper)) {
      const sweeper = new CallDataFunction(this, 'Sweeper', {
        entry: ENTRIES.sweeper,
        description: 'calldata sweeper: closes calls left open by a lost worker whose room is gone; purges discarded recordings',
        serviceName: 'calldata-sweeper',
        timeout: Duration.seconds(settings.sweeperTimeoutSeconds),
        logRetention,
        removalPolicy,
        ...vpcProps,
        environment: {
          ...flagsEnv,
          ...priceEnv,
          ...locationEnv,
          ...s3Env,
          ...livekitEnv,
          ...factQueueEnv,
          ...(settings.sweepAfterMs !== undefined ? { CALLDATA_SWEEP_AFTER_MS: String(settings.sweepAfterMs) } : {}),
        },
      });
      // Reads the primary location (s3: the bucket), sends closing facts, asks LiveKit.
      this.grantObjects(sweeper.role, ['s3:GetObject']);
      deleteOpenMarkers(sweeper);
      readLocationSecrets(sweeper);
      this.livekitSecret.grantRead(sweeper.role);
      this.snapshots.queue.grantSendMessages(sweeper.role);
      if (settings.callRecording) {
        sweeper.role.addToPrincipalPolicy(
          new iam.PolicyStatement({ sid: 'PurgeDiscardedRecordings', actions: ['s3:DeleteObject'], resources: [this.bucket.arnForObjects(`${DISCARD_PREFIX}/*`)] }),
        );
      }
      this.sweeper = sweeper;
      if (settings.sweepSchedule) {
        this.sweepSchedule = new events.Rule(this, 'SweepSchedule', {
          description: `calldata: runs the sweeper every ${SWEEP_INTERVAL_MINUTES} minutes`,
          schedule: events.Schedule.rate(Duration.minutes(SWEEP_INTERVAL_MINUTES)),
          // A failed sweep is not retried: the next one comes in a few minutes and does the same.
          targets: [new eventsTargets.LambdaFunction(sweeper.function, { retryAttempts: 0 })],
        });
      } else if (!settings.localstack) {
        Annotations.of(this).addWarning('sweepSchedule is off: the sweeper runs only when invoked, so calls whose worker and room_finished webhook were both lost stay open until then.');
      }
    } else {
      Annotations.of(this).addWarning(`${ENTRIES.sweeper} does not exist yet: the sweeper function is not part of this synth.`);
    }

    // --- alarms ---------------------------------------------------------------------------
    const topic = settings.alarmEmail ? new sns.Topic(this, 'Alarms', { enforceSSL: true, masterKey: undefined }) : undefined;
    if (topic && settings.alarmEmail) {
      topic.addSubscription(new snsSubscriptions.EmailSubscription(settings.alarmEmail));
      acknowledge(topic, { id: 'AwsSolutions-SNS2', reason: 'Alarm notifications carry only alarm names and queue depths, no call data; SSE would need a customer managed key that CloudWatch may use.' });
    }
    for (const [name, pair] of [
      ['Snapshots', this.snapshots],
      ['Recording', this.recordings],
    ] as const) {
      const alarm = new cloudwatch.Alarm(this, `${name}DeadLetterAlarm`, {
        alarmDescription: `calldata: messages are waiting in the ${name.toLowerCase()} dead-letter queue (see docs/deploy.md, "Dead letters")`,
        metric: pair.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      if (topic) alarm.addAlarmAction(new cwActions.SnsAction(topic));
    }

    // --- worker ---------------------------------------------------------------------------
    if (!settings.deployWorker && !settings.localstack && !settings.livekitUrl) {
      Annotations.of(this).addWarning('The worker service is not deployed: set livekitUrl (and optionally deployWorker=true) to run the agent worker on ECS.');
    }
    if (settings.deployWorker) {
      this.worker = new WorkerService(this, 'Worker', {
        settings,
        vpc,
        subnets: vpcSubnets,
        snapshotQueue: this.snapshots.queue,
        bucket: this.bucket,
        livekitSecret: this.livekitSecret,
        logRetention,
        removalPolicy,
      });
    }

    // --- outputs --------------------------------------------------------------------------
    new CfnOutput(this, 'SnapshotQueueUrl', { value: this.snapshots.queue.queueUrl, description: 'CALLDATA_QUEUE_URL for workers: the fact queue' });
    new CfnOutput(this, 'RecordingQueueUrl', { value: this.recordings.queue.queueUrl, description: 'The recording queue (the persist function sends recording commands to it)' });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.snapshots.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'RecordingDeadLetterQueueUrl', { value: this.recordings.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'BucketName', { value: this.bucket.bucketName, description: 'AWS_S3_BUCKET: recordings and S3-stored metadata and transcripts' });
    new CfnOutput(this, 'LiveKitSecretArn', { value: this.livekitSecret.secretArn, description: 'Put {"apiKey","apiSecret"} here (docs/deploy.md)' });
    new CfnOutput(this, 'PersistFunctionName', { value: this.persist.function.functionName });
    if (this.recording) new CfnOutput(this, 'RecordingFunctionName', { value: this.recording.function.functionName });
    if (this.webhook) new CfnOutput(this, 'WebhookFunctionName', { value: this.webhook.function.functionName });
    if (this.sweeper) new CfnOutput(this, 'SweeperFunctionName', { value: this.sweeper.function.functionName });

    this.suppressFindings();
  }

  private queuePair(name: string, visibilityTimeoutSeconds: number, settings: CallDataSettings, removalPolicy: RemovalPolicy): QueuePair {
    const deadLetterQueue = new sqs.Queue(this, `${name}DeadLetters`, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    });
    acknowledge(deadLetterQueue, { id: 'AwsSolutions-SQS3', reason: 'This queue is itself a dead-letter queue.' });
    const queue = new sqs.Queue(this, `${name}Queue`, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Long enough to ride out a day-long backend outage with margin (SQS keeps up to 14 days).
      retentionPeriod: Duration.days(settings.queueRetentionDays),
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
      removalPolicy,
    });
    return { queue, deadLetterQueue };
  }

  /** Object access in the call-data bucket (keys are chosen per call) plus ListBucket, nothing else. */
  private grantObjects(role: iam.IRole, actions: string[]): void {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'CallDataObjects', actions, resources: [this.bucket.arnForObjects('*')] }));
    // HeadObject/GetObject of a missing key answers 404 (not 403) only with ListBucket.
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'CallDataList', actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }));
  }

  private suppressFindings(): void {
    if (this.sweeper && this.settings.callRecording) {
      acknowledge(this.sweeper.role, {
        id: `AwsSolutions-IAM5[${arnFinding(this.bucket, `/${DISCARD_PREFIX}/*`)}]`,
        reason: 'Discarded recordings keep their <room>/<timestamp>/<file> key under the discard prefix; the purge may delete only there.',
      });
    }
    for (const fn of [this.persist, this.recording, this.webhook, this.sweeper]) {
      if (!fn) continue;
      acknowledge(
        fn.role,
        {
          id: `AwsSolutions-IAM5[${arnFinding(this.bucket, '/*')}]`,
          reason: 'Call artifacts are keyed <room>/<timestamp>/<file> with room names chosen at call time, so the object ARN of this stack\'s own bucket must end in /*.',
        },
        {
          id: `AwsSolutions-IAM5[${arnFinding(fn.logGroup, ':log-stream:*')}]`,
          reason: 'Lambda creates one log stream per container with a generated name; the grant is limited to the function\'s own log group.',
        },
      );
      if (this.settings.vpcId) {
        acknowledge(fn.role, { id: 'AwsSolutions-IAM5[Resource::*]', reason: 'EC2 network interface actions for VPC functions have no resource-level permissions (same as AWSLambdaVPCAccessExecutionRole).' });
      }
    }
  }
}
