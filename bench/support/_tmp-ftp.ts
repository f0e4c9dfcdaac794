import './quiet.ts';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { getConfig, resetConfigForTests } from '../../functions/config/config.ts';
import { handler } from '../../functions/persist/handler.ts';
import { closeAllBackends } from '../../functions/storage/select.ts';
import { rawRedis, rawRow } from './persist-raw.ts';
import { eventsOf, workload } from './persist-workloads.ts';
const mode = process.argv[2];
const location = 'redis://127.0.0.1:56379/13';
Object.assign(process.env, { SAVE_METADATA: 'true', SAVE_TRANSCRIPTION: 'false', TIMEZONE: 'Asia/Kolkata', METADATA_LOCATION: location });
resetConfigForTests();
const ctx: any = { getRemainingTimeInMillis: () => 60000, functionName: 'x', awsRequestId: 'r', invokedFunctionArn: 'a', memoryLimitInMB: '1', functionVersion: '1' };
const msgs = workload('updates', `F${randomUUID().slice(0, 6)}x`, 600);
const g = globalThis as any;
if (mode === 'raw') {
  const d = rawRedis(location);
  for (const m of msgs.slice(0, 500)) await d.write(rawRow(m.body, 'Asia/Kolkata'));
  g.__ftp.n = 0; g.__ftp.ns = 0n;
  for (const m of msgs.slice(500)) await d.write(rawRow(m.body, 'Asia/Kolkata'));
  await d.close();
} else if (mode === 'tight') {
  for (const m of msgs) rawRow(m.body, 'Asia/Kolkata');
  g.__ftp.n = 0; g.__ftp.ns = 0n;
  for (const m of msgs) rawRow(m.body, 'Asia/Kolkata');
} else {
  const ev = eventsOf(msgs, 1);
  for (const e of ev.slice(0, 500)) await handler(e, ctx);
  g.__ftp.n = 0; g.__ftp.ns = 0n;
  for (const e of ev.slice(500)) await handler(e, ctx);
  await closeAllBackends();
}
const c = new Redis(location); await c.flushdb(); await c.quit();
