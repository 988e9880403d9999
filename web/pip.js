// @ts-check
// "Pop out": moves the call layer into a Document Picture-in-Picture window
// and back. Only offered when the browser has documentPictureInPicture.

let pipWindow = null;
let home = null; // {parent, next}

/**
 * The Document Picture-in-Picture API, where the browser has it.
 * @returns {{requestWindow: (options: {width: number, height: number}) => Promise<Window>} | undefined}
 */
function dpip() {
  return /** @type {any} */ (window).documentPictureInPicture;
}

export function pipSupported() {
  const api = dpip();
  return !!api && typeof api.requestWindow === 'function';
}

export function isPoppedOut() {
  return !!pipWindow;
}

function copyStyles(target) {
  for (const sheet of Array.from(document.styleSheets)) {
    try {
      const css = Array.from(sheet.cssRules, (r) => r.cssText).join('\n');
      const style = target.document.createElement('style');
      style.textContent = css;
      target.document.head.append(style);
    } catch {
      if (sheet.href) {
        const link = target.document.createElement('link');
        link.rel = 'stylesheet';
        link.href = sheet.href;
        target.document.head.append(link);
      }
    }
  }
}

/**
 * Moves `node` into a floating window. onMoved runs once it is there;
 * onReturn after it has come back (the window was closed by the user or
 * by popIn()).
 * @param {HTMLElement} node
 * @param {{width?: number, height?: number, onMoved?: () => void, onReturn?: () => void}} [options]
 */
export async function popOut(node, { width = 360, height = 480, onMoved, onReturn } = {}) {
  if (!pipSupported()) throw new Error('Picture-in-Picture windows are not supported by this browser');
  if (pipWindow) return;
  const win = await dpip().requestWindow({ width, height });
  pipWindow = win;
  home = { parent: node.parentNode, next: node.nextSibling };
  copyStyles(win);
  win.document.title = document.title;
  win.document.documentElement.lang = document.documentElement.lang;
  const meta = win.document.createElement('meta');
  meta.name = 'color-scheme';
  meta.content = 'dark';
  win.document.head.append(meta);
  win.document.body.classList.add('pip');
  win.document.body.append(node);
  if (onMoved) onMoved();
  win.addEventListener(
    'pagehide',
    () => {
      if (home && home.parent) home.parent.insertBefore(node, home.next && home.next.parentNode === home.parent ? home.next : null);
      home = null;
      pipWindow = null;
      if (onReturn) onReturn();
    },
    { once: true },
  );
}

/** Closes the floating window; the node returns via the pagehide handler. */
export function popIn() {
  if (!pipWindow) return;
  try {
    pipWindow.close();
  } catch {
    /* ignore */
  }
}
