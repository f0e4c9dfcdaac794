/**
 * Receives the webhooks the test livekit-server posts (scripts/servers.sh configures it to
 * post to 127.0.0.1:$LIVEKIT_WEBHOOK_PORT) and hands each to a handler, as the deployed
 * function URL would. Keeps every response so tests can wait for the one they expect.
 */
import { createServer, type Server } from 'node:http';

export interface DeliveredWebhook {
  event: string;
  roomSid: string | undefined;
  statusCode: number;
  body: string;
}

export type WebhookForwarder = (request: { authorization: string | undefined; body: string }) => Promise<{ statusCode: number; body: string }>;

export class WebhookListener {
  readonly delivered: DeliveredWebhook[] = [];
  private server: Server | undefined;
  private readonly forward: WebhookForwarder;
  readonly port: number;

  constructor(forward: WebhookForwarder, port = Number(process.env.LIVEKIT_WEBHOOK_PORT ?? 7891)) {
    this.forward = forward;
    this.port = port;
  }

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let event = '';
        let roomSid: string | undefined;
        try {
          const parsed = JSON.parse(body) as { event?: string; room?: { sid?: string } };
          event = parsed.event ?? '';
          roomSid = parsed.room?.sid;
        } catch {
          // Not JSON: the forwarder answers it (and rejects it).
        }
        this.forward({ authorization: request.headers.authorization, body }).then(
          (result) => {
            this.delivered.push({ event, roomSid, ...result });
            response.writeHead(result.statusCode).end(result.body);
          },
          (error: unknown) => {
            this.delivered.push({ event, roomSid, statusCode: 500, body: String(error) });
            response.writeHead(500).end();
          },
        );
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
