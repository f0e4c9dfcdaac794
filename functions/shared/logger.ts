/** One structured logger per process: static messages, context in fields, no secrets or raw phone numbers. */
import { Logger } from '@aws-lambda-powertools/logger';

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'calldata' });
