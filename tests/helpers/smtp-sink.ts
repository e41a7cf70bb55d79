// A real SMTP server process for tests (`smtp-server`): it accepts every mail (any or no login), writes each one
// as `<n>.eml` into SMTP_SINK_DIR, and prints `SMTP listening on <port>` once it listens on SMTP_SINK_PORT.
// SMTP_SINK_REJECT_FIRST=n answers the first n mails with `451 4.3.0 try again later` (a transient refusal).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

const dir = process.env.SMTP_SINK_DIR ?? '.';
const port = Number(process.env.SMTP_SINK_PORT ?? 0);
let toReject = Number(process.env.SMTP_SINK_REJECT_FIRST ?? 0);
let received = 0;
mkdirSync(dir, { recursive: true });

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onAuth: (_auth, _session, callback) => callback(null, { user: 'test' }),
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      if (toReject > 0) {
        toReject--;
        const error = new Error('try again later') as Error & { responseCode: number };
        error.responseCode = 451;
        callback(error);
        return;
      }
      received++;
      writeFileSync(join(dir, `${String(received).padStart(6, '0')}.eml`), Buffer.concat(chunks));
      callback();
    });
  },
});
server.listen(port, '127.0.0.1', () => {
  const address = server.server.address();
  console.log(`SMTP listening on ${typeof address === 'object' && address ? address.port : port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
