// The built-in stowrsd emulator: the last requests it answered, with status, instances
// and bytes (GET /monitor/emulator, stowpair's addition).

import {get} from './api.js';
import {bytes, h, plural, renderIfChanged, table, timeCell} from './dom.js';
import {hex, reasonMeaning} from './model.js';

export function mount(main) {
  const summary = h('p', {class: 'totals'});
  const list = h('div', {class: 'list'});
  main.append(h('h1', {}, 'Built-in emulator'), summary, list);

  async function refresh() {
    const {body} = await get('/monitor/emulator');
    renderIfChanged(summary, JSON.stringify([body.enabled, body.url, body.received, body.capacity]), () => summaryView(body));
    renderIfChanged(list, JSON.stringify([body.enabled, body.requests]), () => requestsView(body));
  }

  return {title: 'Emulator', refresh};
}

function summaryView(body) {
  if (!body.enabled) return 'The built-in stowrsd emulator is disabled ([emulator] enabled = false in the configuration).';
  return [
    'The stowrsd emulator at ', h('code', {}, body.url || '(not listening)'),
    ` has answered ${plural(body.received, 'request')} since the service started`,
    body.received > body.capacity ? `; the last ${body.capacity} are kept here, newest first.` : ', newest first.',
  ];
}

function requestsView(body) {
  if (!body.enabled) return [];
  if (!body.requests.length) {
    return h('div', {class: 'empty'},
      h('p', {}, h('strong', {}, 'No request received yet.')),
      h('p', {}, 'STOW-RS requests to ', h('code', {}, `${body.url || ''}/studies`),
        ' appear here as they are answered: exports to a web application pointing at the emulator, or any STOW-RS client.'));
  }
  const rows = body.requests.map((r) => h(
    'tr',
    {class: r.status >= 400 || r.failed ? 'bad' : null},
    timeCell(r.time),
    h('td', {}, r.method),
    h('td', {class: 'path', title: r.path}, r.path),
    h('td', {}, r.peer),
    h('td', {class: 'num'}, h('span', {class: `http h${String(r.status)[0]}xx`}, String(r.status))),
    h('td', {class: 'num'}, String(r.parts)),
    h('td', {class: 'num'}, String(r.stored)),
    h('td', {class: 'num'}, String(r.failed)),
    h('td', {}, Object.entries(r.failureReasons || {}).map(([code, n]) => {
      const meaning = reasonMeaning(parseInt(code, 16));
      return h('span', {class: 'reason', title: meaning ? meaning.meaning : ''}, `${n} × ${hex(parseInt(code, 16))} ${meaning ? meaning.meaning : ''}`);
    })),
    h('td', {class: 'num'}, bytes(r.bytes)),
    h('td', {class: 'num'}, `${r.elapsed.toFixed(3)} s`),
    h('td', {class: 'message', title: r.error || ''}, r.error || ''),
  ));
  return table(
    null,
    ['Received', 'Method', 'Path', 'From', 'HTTP', 'Parts', 'Stored', 'Failed', 'Failure reasons', 'Bytes', 'Took', 'Error'],
    rows,
    {class: 'requests'},
  );
}
