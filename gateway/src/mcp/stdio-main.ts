#!/usr/bin/env node
// aiva-mcp (`pnpm mcp`): AIVA's MCP server over stdio, for desktop clients, bridged to a gateway's /mcp.
// AIVA_GATEWAY_URL (default http://127.0.0.1:3000) is the gateway; AIVA_TOKEN an access token from auth (the
// caller); AIVA_MCP_POLL_SECONDS (default 30) how often a changed tool list is looked for.
import { startStdioBridge } from './stdio-bridge.js';

const base = process.env.AIVA_GATEWAY_URL?.trim() || 'http://127.0.0.1:3000';
let url: URL;
try {
  url = new URL('/mcp', base);
} catch {
  process.stderr.write(`aiva-mcp: AIVA_GATEWAY_URL is not a URL\n`);
  process.exit(1);
}
const pollSeconds = Number(process.env.AIVA_MCP_POLL_SECONDS ?? 30);
if (!Number.isFinite(pollSeconds) || pollSeconds <= 0) {
  process.stderr.write('aiva-mcp: AIVA_MCP_POLL_SECONDS must be a positive number\n');
  process.exit(1);
}
await startStdioBridge({
  url,
  token: process.env.AIVA_TOKEN?.trim() || undefined,
  pollMs: pollSeconds * 1000,
});
