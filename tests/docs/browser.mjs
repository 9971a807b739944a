// tests/docs/browser.mjs - what a `js browser` block of the docs has in Node
// (node --import tests/docs/browser.mjs): a global WebSocket (the `ws`
// package's, as browsers have one), and imports from http:// URLs (a page's
// `import … from 'http://127.0.0.1:8080/parley.js'`), fetched as ES modules.
import { register } from 'node:module';
import WebSocket from 'ws';

globalThis.WebSocket ??= WebSocket;

const hooks = `
export async function resolve(specifier, context, next) {
  const parent = context.parentURL || '';
  if (/^https?:\\/\\//.test(specifier)) return { url: specifier, shortCircuit: true };
  if (/^https?:\\/\\//.test(parent) && /^\\.{0,2}\\//.test(specifier))
    return { url: new URL(specifier, parent).href, shortCircuit: true };
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (!/^https?:\\/\\//.test(url)) return next(url, context);
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(url + ': HTTP ' + r.status);
  return { format: 'module', source: await r.text(), shortCircuit: true };
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
