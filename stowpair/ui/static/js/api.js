// The REST API client: the same documented routes and JSON the CLI uses
// (docs/rest-api.md). Credentials, when the API asks for them, are kept in
// sessionStorage and sent as an Authorization header on every call; fetch never sends
// cookies or browser-cached credentials (credentials: 'omit'), so no other page can
// ride on them. State-changing calls send no body at all, and the browser adds this
// page's Origin, which the server checks.

export const BASE = '/dcm4chee-arc';
const STORAGE_KEY = 'stowpair.authorization';

export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let unauthorizedHandler = null;
let pendingSignIn = null;

/**
 * `handler(challenge, message)` is called when the API answers 401; it resolves once
 * new credentials are stored (the call is then repeated) and rejects when the user
 * gives up. Concurrent 401s share one sign-in.
 */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export function authorization() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function storeAuthorization(value) {
  if (value) sessionStorage.setItem(STORAGE_KEY, value);
  else sessionStorage.removeItem(STORAGE_KEY);
  document.dispatchEvent(new CustomEvent('stowpair-auth'));
}

function signIn(challenge, message) {
  if (!pendingSignIn) {
    pendingSignIn = Promise.resolve(unauthorizedHandler(challenge, message)).finally(() => {
      pendingSignIn = null;
    });
  }
  return pendingSignIn;
}

export function url(path, query = {}) {
  const target = new URL(BASE + path, window.location.origin);
  for (const [name, value] of Object.entries(query)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== '') target.searchParams.append(name, one);
    }
  }
  return target;
}

/**
 * One call; resolves to {status, body} for a 2xx answer and for the statuses in `ok`,
 * rejects with ApiError otherwise (its message is the API's errorMessage).
 */
export async function call(method, path, {query = {}, ok = [], accept = 'application/json'} = {}) {
  const target = url(path, query);
  for (;;) {
    const headers = {Accept: accept};
    const auth = authorization();
    if (auth) headers.Authorization = auth;
    let response;
    try {
      response = await fetch(target, {method, headers, credentials: 'omit', cache: 'no-store'});
    } catch (error) {
      throw new ApiError(0, `Cannot reach the stowpair REST API at ${window.location.origin} (${error.message})`);
    }
    const body = await parse(response);
    if (response.status === 401 && unauthorizedHandler) {
      const challenge = response.headers.get('WWW-Authenticate') || '';
      await signIn(challenge, messageOf(body, response));
      continue;
    }
    if (response.ok || ok.includes(response.status)) return {status: response.status, body};
    throw new ApiError(response.status, messageOf(body, response), body);
  }
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function messageOf(body, response) {
  if (body && typeof body === 'object' && body.errorMessage) return body.errorMessage;
  if (typeof body === 'string' && body.trim()) return body.trim().slice(0, 300);
  return `HTTP ${response.status} ${response.statusText}`.trim();
}

export const get = (path, query, options = {}) => call('GET', path, {...options, query});
export const post = (path, query, options = {}) => call('POST', path, {...options, query});
export const remove = (path, query, options = {}) => call('DELETE', path, {...options, query});
