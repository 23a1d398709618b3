import type { ThinnestAIGlobal } from './types';

// One load per script URL for the whole page, however many components ask for it: a second
// copy of the script would be a no-op anyway, but it would cost a request.
const loads = new Map<string, Promise<ThinnestAIGlobal>>();

/** `https://voice.example.com/` → `https://voice.example.com/widget.js`. */
export function widgetScriptUrl(serverUrl: string): string {
  return `${serverUrl.replace(/\/+$/, '')}/widget.js`;
}

function ready(): ThinnestAIGlobal | null {
  const api = typeof window === 'undefined' ? undefined : window.ThinnestAI;
  return api && typeof api.Widget === 'function' ? api : null;
}

/**
 * Loads the product's `/widget.js` (SDK + widget) from the voice server, once per page, and
 * resolves to `window.ThinnestAI`. Resolves at once when the page already has it (a
 * `<script src=".../widget.js">` tag of its own), in which case `serverUrl` may be omitted.
 */
export function loadThinnest(serverUrl?: string): Promise<ThinnestAIGlobal> {
  const api = ready();
  if (api) return Promise.resolve(api);
  if (typeof document === 'undefined') {
    return Promise.reject(new Error('ThinnestAI can only be loaded in a browser.'));
  }
  if (!serverUrl) {
    const message =
      'serverUrl is required (the voice server, e.g. "https://voice.example.com"), unless the ' +
      'page already loads <script src=".../widget.js">.';
    return Promise.reject(Object.assign(new Error(message), { code: 'invalid_config' }));
  }
  const src = widgetScriptUrl(serverUrl);
  const cached = loads.get(src);
  if (cached) return cached;

  const loading = new Promise<ThinnestAIGlobal>((resolve, reject) => {
    // A tag left by another copy of this package (two bundles on one page) is reused.
    const existing = Array.from(
      document.querySelectorAll<HTMLScriptElement>('script[data-thinnest-embed]'),
    ).find((tag) => tag.getAttribute('src') === src);
    const script = existing ?? document.createElement('script');
    const fail = (message: string) => {
      loads.delete(src); // a later mount may try again (the network may be back)
      script.remove();
      reject(Object.assign(new Error(message), { code: 'script_load_failed' }));
    };
    script.addEventListener('load', () => {
      const loaded = ready();
      if (loaded) resolve(loaded);
      else fail(`${src} loaded but did not define ThinnestAI.Widget.`);
    });
    script.addEventListener('error', () => fail(`Could not load the voice widget from ${src}.`));
    if (!existing) {
      script.src = src;
      script.async = true;
      script.setAttribute('data-thinnest-embed', '');
      document.head.appendChild(script);
    }
  });
  loads.set(src, loading);
  return loading;
}
