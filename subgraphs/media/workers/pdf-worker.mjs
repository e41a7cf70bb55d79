// Reads one PDF in a worker thread, so a hostile document can neither block the service's event loop nor take
// its memory: the caller bounds the worker's heap and terminates it at the deadline. Plain JavaScript (no build
// step), loaded the same way from src/ (tsx, tests) and dist/.
//
// In:  workerData { bytes: Uint8Array, maxPages, maxTextChars, renderLongestSide }
// Out: { ok: true, pageCount, width, height, text, png: Uint8Array } or { ok: false, message }
import { parentPort, workerData } from 'node:worker_threads';

/**
 * pdf.js (bundled in unpdf 1.7) compiles font data with `ArrayBuffer.prototype.transferToFixedLength`, an ES2024
 * method Node 20 lacks; without it every page renders blank. pdf.js polyfills its other recent methods but not
 * this one, so it is added the same way, only when absent. Not needed from Node 21 on.
 */
function polyfillTransferToFixedLength() {
  if (typeof ArrayBuffer.prototype.transferToFixedLength === 'function') return;
  Object.defineProperty(ArrayBuffer.prototype, 'transferToFixedLength', {
    value(newLength = this.byteLength) {
      const moved = structuredClone(this, { transfer: [this] });
      if (newLength === moved.byteLength) return moved;
      if (newLength < moved.byteLength) return moved.slice(0, newLength);
      const grown = new ArrayBuffer(newLength);
      new Uint8Array(grown).set(new Uint8Array(moved));
      return grown;
    },
    writable: true,
    configurable: true,
  });
}

const importCanvas = () => import('@napi-rs/canvas');

/** Cuts at `max` characters without splitting a surrogate pair. */
function capText(text, max) {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** The text of one page, lines kept where pdf.js marks them. */
async function pageText(pdf, pageNumber) {
  const page = await pdf.getPage(pageNumber);
  try {
    const content = await page.getTextContent();
    return content.items
      .filter((item) => typeof item.str === 'string')
      .map((item) => `${item.str}${item.hasEOL ? '\n' : ''}`)
      .join('');
  } finally {
    page.cleanup();
  }
}

/** Text of the first `maxPages` pages, page by page, stopping once `maxTextChars` is reached. */
async function limitedText(pdf, maxPages, maxTextChars) {
  const pages = Math.min(pdf.numPages, maxPages);
  let text = '';
  for (let n = 1; n <= pages && text.length < maxTextChars; n++) {
    text += `${n > 1 ? '\n' : ''}${await pageText(pdf, n)}`;
  }
  const normalized = text
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ ?\n ?/g, '\n')
    .trim();
  return capText(normalized, maxTextChars);
}

async function read({ bytes, maxPages, maxTextChars, renderLongestSide }) {
  polyfillTransferToFixedLength();
  const { createIsomorphicCanvasFactory, getDocumentProxy, renderPageAsImage } = await import('unpdf');
  const CanvasFactory = await createIsomorphicCanvasFactory(importCanvas);
  const pdf = await getDocumentProxy(new Uint8Array(bytes), {
    verbosity: 0, // errors only: warnings about odd PDFs would flood the logs
    CanvasFactory,
    isEvalSupported: false,
    stopAtErrors: true,
  });
  try {
    const text = await limitedText(pdf, maxPages, maxTextChars);
    const first = await pdf.getPage(1);
    const { width, height } = first.getViewport({ scale: 1 });
    const longest = Math.max(width, height);
    if (!(longest > 0)) throw new Error('page 1 has no size');
    const png = await renderPageAsImage(pdf, 1, {
      canvasImport: importCanvas,
      scale: renderLongestSide / longest,
    });
    return { ok: true, pageCount: pdf.numPages, width, height, text, png: new Uint8Array(png) };
  } finally {
    await pdf.destroy();
  }
}

read(workerData).then(
  (result) => parentPort.postMessage(result, [result.png.buffer]),
  (error) => parentPort.postMessage({ ok: false, message: String(error?.message ?? error).slice(0, 300) }),
);
