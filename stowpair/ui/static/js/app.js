// The console shell: routes (#/tasks, #/tasks/ID, #/studies, #/config, #/emulator),
// the live refresh of the page shown, and the error banner.

import {ApiError, get} from './api.js';
import {installAuth} from './auth.js';
import {h, shortTime} from './dom.js';
import * as configPage from './config.js';
import * as emulatorPage from './emulator.js';
import * as studiesPage from './studies.js';
import * as taskPage from './task.js';
import * as tasksPage from './tasks.js';

/** Seconds between refreshes of the page shown (while the tab is visible). */
const REFRESH_SECONDS = 2;

const ROUTES = [
  [/^\/tasks$/, tasksPage, 'tasks'],
  [/^\/tasks\/(\d+)$/, taskPage, 'tasks'],
  [/^\/studies$/, studiesPage, 'studies'],
  [/^\/config$/, configPage, 'config'],
  [/^\/emulator$/, emulatorPage, 'emulator'],
];

const state = {page: null, path: null, live: true, running: false, timer: null, lastTasksHash: '#/tasks'};

// The configuration (exporters, queues, AE titles) changes rarely: fetched at most every
// 10 s for the pages that offer choices from it.
let configCache = {at: 0, promise: null};
export function configuration(fresh = false) {
  const now = Date.now();
  if (fresh || !configCache.promise || now - configCache.at > 10000) {
    configCache = {at: now, promise: get('/ctrl/config').then((r) => r.body)};
    configCache.promise.catch(() => {
      configCache = {at: 0, promise: null};
    });
  }
  return configCache.promise;
}

export function tasksHash() {
  return state.lastTasksHash;
}

function parseHash() {
  const hash = window.location.hash || '';
  if (!hash.startsWith('#/')) return null;
  const [path, query = ''] = hash.slice(1).split('?');
  return {path, params: new URLSearchParams(query)};
}

function route() {
  const parsed = parseHash();
  if (parsed === null) {
    if (!state.page) window.location.replace('#/tasks');
    return; // an in-page anchor
  }
  const {path, params} = parsed;
  if (path === '/tasks') state.lastTasksHash = window.location.hash;
  const main = document.getElementById('main');
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  for (const link of document.querySelectorAll('nav a')) {
    const current = found && link.dataset.section === found[2];
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (state.page && state.path === path && state.page.update) {
    state.page.update(params);
    refreshNow();
    return;
  }
  if (state.page && state.page.dispose) state.page.dispose();
  state.path = path;
  if (!found) {
    state.page = null;
    document.title = 'Not found — stowpair';
    main.replaceChildren(
      h('h1', {tabindex: -1}, 'No such page'),
      h('p', {}, 'The console has ', h('a', {href: '#/tasks'}, 'Export tasks'), ', ',
        h('a', {href: '#/studies'}, 'Studies'), ', ', h('a', {href: '#/config'}, 'Configuration'),
        ' and ', h('a', {href: '#/emulator'}, 'Emulator'), '.'),
    );
    return;
  }
  const [pattern, module] = found;
  const match = path.match(pattern);
  main.replaceChildren();
  state.page = module.mount(main, {params, match, configuration, tasksHash});
  document.title = `${state.page.title} — stowpair`;
  const heading = main.querySelector('h1');
  if (heading && document.activeElement && !main.contains(document.activeElement)) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({preventScroll: true});
  }
  refreshNow();
}

function refreshNow() {
  clearTimeout(state.timer);
  tick();
}

async function tick() {
  if (state.running) return;
  const page = state.page;
  if (!page) return;
  if (document.visibilityState === 'hidden') {
    schedule(); // nobody is looking: refresh when the tab is shown again
    return;
  }
  state.running = true;
  try {
    await page.refresh();
    if (page === state.page) showHealthy();
  } catch (error) {
    if (page === state.page) showProblem(error);
  } finally {
    state.running = false;
    schedule();
  }
}

function schedule() {
  clearTimeout(state.timer);
  if (state.live) state.timer = setTimeout(tick, REFRESH_SECONDS * 1000);
}

function showHealthy() {
  document.getElementById('live').classList.remove('down');
  const banner = document.getElementById('banner');
  banner.hidden = true;
  banner.replaceChildren();
  document.getElementById('updated').textContent = `updated ${shortTime(new Date().toISOString())}`;
}

function showProblem(error) {
  const reach = error instanceof ApiError && error.status === 0;
  const live = document.getElementById('live');
  if (reach && !live.classList.contains('down')) {
    live.classList.add('down');
    document.getElementById('updated').textContent = `no answer since ${shortTime(new Date().toISOString())}`;
  }
  const banner = document.getElementById('banner');
  const title = reach ? 'The REST API does not answer.' : 'The REST API refused a request of this page.';
  const detail = error instanceof ApiError && error.status ? `HTTP ${error.status}: ${error.message}` : error.message;
  banner.replaceChildren(
    h('strong', {}, title), ' ', detail, ' ',
    state.live ? `Trying again every ${REFRESH_SECONDS} s.` : 'Live updates are paused.',
    ' ',
    h('button', {type: 'button', class: 'secondary small', onclick: refreshNow}, 'Try now'),
  );
  banner.hidden = false;
}

function setLive(live) {
  state.live = live;
  const button = document.getElementById('live-toggle');
  button.setAttribute('aria-pressed', String(live));
  button.textContent = live ? 'Pause live updates' : 'Resume live updates';
  document.getElementById('live').classList.toggle('paused', !live);
  if (live) refreshNow();
  else clearTimeout(state.timer);
}

function start() {
  installAuth(document.getElementById('session'));
  // "Skip to content" moves the focus without touching the route in the address
  document.querySelector('.skip').addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main').focus();
  });
  document.getElementById('live-toggle').addEventListener('click', () => setLive(!state.live));
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.live) refreshNow();
  });
  document.addEventListener('stowpair-auth', () => refreshNow());
  document.addEventListener('stowpair-refresh', () => refreshNow());
  window.addEventListener('hashchange', route);
  route();
}

start();
