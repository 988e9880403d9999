// @ts-check
// HTTP API (docs/protocol.md, "HTTP API"). Every function throws an
// ApiError with a human-readable message on failure.

export class ApiError extends Error {
  constructor(message, { code = 'network', status = 0 } = {}) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method] HTTP method, GET by default
 * @property {string} [token] access token, sent as a bearer token
 * @property {any} [body] sent as JSON
 * @property {number} [timeoutMs] how long to wait for an answer
 * @property {boolean} [empty] the answer has no body
 */

/**
 * @param {string} path
 * @param {RequestOptions} [options]
 */
export async function request(path, { method = 'GET', token, body, timeoutMs = 10000, empty = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError(err && err.name === 'AbortError' ? 'Server did not answer in time' : 'Server unreachable');
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  const text = await res.text().catch(() => '');
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError((e && e.message) || `Server error (${res.status})`, {
      code: (e && e.code) || 'http_' + res.status,
      status: res.status,
    });
  }
  if (data === null) {
    if (empty) return null;
    throw new ApiError('Unexpected answer from server', { code: 'bad_response', status: res.status });
  }
  return data;
}

/** GET /api/v1/info → {name, version, protocol, dev, accounts} */
export function getInfo() {
  return request('/api/v1/info');
}

/** POST /api/v1/dev/token → {token, expires_at} (dev mode only). */
export async function devToken(user, device) {
  const data = await request('/api/v1/dev/token', { method: 'POST', body: { user, device } });
  if (!data || typeof data.token !== 'string' || !data.token) {
    throw new ApiError('The server did not return a token', { code: 'bad_response' });
  }
  return data;
}

/** GET /api/v1/calls → array of history entries, newest first. */
export async function getCalls(token, limit = 50) {
  const data = await request(`/api/v1/calls?limit=${encodeURIComponent(limit)}`, { token });
  return Array.isArray(data.calls) ? data.calls : [];
}

/** GET /api/v1/assist/log → [entries], newest first: the user's screen help audit log. */
export async function getAssistLog(token, limit = 50) {
  const data = await request(`/api/v1/assist/log?limit=${limit}`, { token });
  return data && Array.isArray(data.entries) ? data.entries : [];
}

/** GET /api/v1/me/export → everything the server holds about the user. */
export function exportMyData(token) {
  return request('/api/v1/me/export', { token, timeoutMs: 30000 });
}

/** DELETE /api/v1/me: erases the user's data and signs their devices out. */
export async function eraseMyData(token) {
  await request('/api/v1/me', { method: 'DELETE', token, timeoutMs: 30000, empty: true });
}
