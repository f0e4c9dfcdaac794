/**
 * What every Lambda handler of the project shares: the middy chain (logger context, then
 * secrets resolved into the environment before the configuration is first read).
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { Context } from 'aws-lambda';
import { secretsFromEnv } from '../config/secrets.ts';
import { logger } from './logger.ts';

export function lambdaHandler<E, R>(handle: (event: E, context: Context) => Promise<R>) {
  return middy(handle).use(injectLambdaContext(logger, { resetKeys: true })).use(secretsFromEnv());
}
