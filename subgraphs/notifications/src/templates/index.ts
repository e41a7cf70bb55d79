// The email templates of the notifications service: `renderEmail(category, vars, { appName, appUrl })`.
export * from './email.js';
export { escapeHtml, html, rawHtml, SafeHtml } from './html.js';
