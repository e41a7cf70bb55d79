import { html, rawHtml, type SafeHtml } from './html.js';

/** Who the mail comes from: the product name and its address, shown in every mail's header and footer. */
export interface EmailContext {
  appName: string;
  appUrl: string;
}

/** The styles of every mail, inline in <head>: mail clients ignore external stylesheets. */
const STYLE = rawHtml(
  'body{margin:0;padding:0;background:#f4f5f7;font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,' +
    'sans-serif;color:#1f2933}.card{max-width:560px;margin:24px auto;background:#fff;border-radius:8px;' +
    'padding:32px}.brand{font-weight:600;font-size:18px;color:#1f2933;text-decoration:none}h1{font-size:20px;' +
    'margin:24px 0 16px}p{line-height:1.5;margin:0 0 16px}.button{display:inline-block;padding:12px 20px;' +
    'background:#2563eb;color:#fff !important;border-radius:6px;text-decoration:none;font-weight:600}' +
    '.muted{color:#616e7c;font-size:13px}.link{word-break:break-all}',
);

/** A whole HTML document around `content`: header with the product name, the content, a footer. */
export function htmlDocument(context: EmailContext, title: string, content: SafeHtml): string {
  return html`<!doctype html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<div class="card">
<a class="brand" href="${context.appUrl}">${context.appName}</a>
<h1>${title}</h1>
${content}
<p class="muted">${context.appName} · <a href="${context.appUrl}">${context.appUrl}</a></p>
</div>
</body>
</html>
`.value;
}

/** A call to action: a button, and the bare link below it for clients that do not show buttons. */
export function actionButton(label: string, url: string): SafeHtml {
  return html`<p><a class="button" href="${url}">${label}</a></p>
<p class="muted">Or open this link: <a class="link" href="${url}">${url}</a></p>\n`;
}

/** Text paragraphs as HTML: blank lines separate paragraphs, single line breaks become <br>. */
export function paragraphs(text: string): SafeHtml[] {
  return text
    .split(/\r?\n\s*\r?\n/)
    .map((block) => block.trim())
    .filter((block) => block.length > 0)
    .map((block) => {
      const lines = block.split(/\r?\n/);
      return html`<p>${lines.map((line, i) => (i === 0 ? html`${line}` : html`<br>${line}`))}</p>\n`;
    });
}

/** The plain text part: the paragraphs, then the signature with the product address. */
export function textDocument(context: EmailContext, blocks: readonly (string | false | undefined)[]): string {
  const body = blocks.filter((block): block is string => typeof block === 'string' && block.length > 0);
  return `${[...body, `— ${context.appName}\n${context.appUrl}`].join('\n\n')}\n`;
}
