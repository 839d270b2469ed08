// Sign-in when the REST API answers 401: HTTP Basic (user and password) or a pasted
// Bearer access token, as its WWW-Authenticate header asks. The Authorization value is
// kept in sessionStorage (this tab only, gone when it closes) and sent by api.js.

import {ApiError, authorization, onUnauthorized, storeAuthorization} from './api.js';
import {field, modal} from './dialogs.js';
import {h} from './dom.js';

/** {scheme: 'basic'|'bearer'|null, realm} from a WWW-Authenticate value. */
export function parseChallenge(value) {
  const scheme = (value.match(/^\s*([A-Za-z]+)/) || [])[1] || '';
  const realm = (value.match(/realm="([^"]*)"/i) || [])[1] || '';
  const known = scheme.toLowerCase();
  return {scheme: known === 'basic' || known === 'bearer' ? known : null, realm};
}

function utf8Base64(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

// After "Not now" the console does not ask again by itself (it refreshes every 2 s);
// the header's "Sign in" button asks again.
let declined = false;

async function askForCredentials(challenge, message) {
  if (declined) throw new ApiError(401, `Sign-in needed (${message}): use "Sign in" at the top right`);
  const {scheme, realm} = parseChallenge(challenge);
  const refused = authorization() !== null;
  const text = [
    `The stowpair REST API asks for credentials${realm ? ` (realm "${realm}")` : ''}.`,
    refused ? `The ones given were refused: ${message}` : null,
    'They are kept in this browser tab only and sent with every request of the console.',
  ].filter(Boolean);
  const basic = [
    field('User', h('input', {name: 'user', autocomplete: 'username', required: true, autofocus: true})),
    field('Password', h('input', {name: 'password', type: 'password', autocomplete: 'current-password', required: true})),
  ];
  const bearer = [
    field(
      'Access token',
      h('textarea', {name: 'token', rows: 4, required: true, autofocus: true, spellcheck: 'false'}),
      'A Bearer access token (JWT) from your authorization server, without the word "Bearer".',
    ),
  ];
  const data = await modal({
    title: 'Sign in',
    text,
    fields: scheme === 'bearer' ? bearer : basic,
    submit: 'Sign in',
    cancel: 'Not now',
  });
  if (data === null) {
    declined = true;
    document.dispatchEvent(new CustomEvent('stowpair-auth-state'));
    throw new ApiError(401, `Sign-in needed (${message}): use "Sign in" at the top right`);
  }
  if (scheme === 'bearer') {
    storeAuthorization(`Bearer ${String(data.get('token')).trim().replace(/^Bearer\s+/i, '')}`);
  } else {
    storeAuthorization(`Basic ${utf8Base64(`${data.get('user')}:${data.get('password')}`)}`);
  }
}

/** The header's sign-out control, shown while credentials are stored. */
export function installAuth(slot) {
  onUnauthorized(askForCredentials);
  const signInAgain = () => {
    declined = false;
    storeAuthorization(null); // announces the change: the page refreshes and asks
  };
  const render = () => {
    let control = '';
    if (authorization()) {
      const signOut = () => {
        declined = true; // until "Sign in" is chosen: no dialog popping up by itself
        storeAuthorization(null);
      };
      control = h('button', {type: 'button', class: 'secondary small', onclick: signOut}, 'Sign out');
    } else if (declined) {
      control = h('button', {type: 'button', class: 'secondary small', onclick: signInAgain}, 'Sign in');
    }
    slot.replaceChildren(control);
  };
  document.addEventListener('stowpair-auth', render);
  document.addEventListener('stowpair-auth-state', render);
  render();
}
