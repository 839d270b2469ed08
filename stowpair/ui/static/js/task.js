// One task: every field of its Task JSON, live progress while it runs, its attempts
// and the per-instance results with what each Failure Reason means.
// Route: GET /monitor/export/{taskID} (stowpair's addition, docs/rest-api.md).

import {ApiError, get} from './api.js';
import {bytes, h, plural, renderIfChanged, shortTime, table, uid} from './dom.js';
import {CANCELLABLE, hex, reasonMeaning, retryText, statusBadge} from './model.js';
import {cancelTask, deleteTask, rescheduleTask} from './taskactions.js';

/** Instances listed at most (a study can have thousands). */
const MAX_ROWS = 1000;
const TIME_FIELDS = ['createdTime', 'updatedTime', 'scheduledTime', 'processingStartTime', 'processingEndTime'];

export function mount(main, context) {
  const id = context.match[1];
  let shown = 'all';
  let last = null;
  const heading = h('h1', {}, `Task ${id}`);
  const summary = h('div', {class: 'task-summary'});
  const fields = h('section', {'aria-labelledby': 'fields-title'});
  const attempts = h('section', {'aria-labelledby': 'attempts-title'});
  const instances = h('section', {'aria-labelledby': 'instances-title'});
  main.append(
    h('p', {class: 'back'}, h('a', {href: context.tasksHash()}, '← Export tasks')),
    heading,
    summary,
    h('div', {class: 'columns'}, fields, attempts),
    instances,
  );

  async function refresh() {
    let task;
    try {
      task = (await get(`/monitor/export/${id}`)).body;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        last = null;
        renderIfChanged(summary, 'gone', () => h('div', {class: 'empty'},
          h('p', {}, h('strong', {}, `There is no task ${id}.`), ' It was deleted or purged, or never existed.'),
          h('p', {}, h('a', {href: context.tasksHash()}, 'Back to the export tasks'))));
        for (const part of [fields, attempts, instances]) renderIfChanged(part, 'gone', () => []);
        return;
      }
      throw error;
    }
    last = task;
    render();
  }

  function render() {
    const task = last;
    const done = (promise) => promise.then(() => document.dispatchEvent(new CustomEvent('stowpair-refresh')));
    heading.replaceChildren(`Task ${id} `, statusBadge(task.status));
    const definition = {...task};
    delete definition.instances;
    delete definition.progress;
    renderIfChanged(summary, JSON.stringify([task.status, task.progress, task.NumberOfInstances, task.outcomeMessage]), () => [
      h(
        'div',
        {class: 'buttons'},
        h('button', {type: 'button', class: 'secondary', disabled: !CANCELLABLE.includes(task.status), 'data-focus': 'cancel', onclick: () => done(cancelTask(task))}, 'Cancel task'),
        h('button', {type: 'button', class: 'secondary', 'data-focus': 'reschedule', onclick: () => done(rescheduleTask(task, context))}, 'Reschedule…'),
        h('button', {type: 'button', class: 'secondary danger-text', 'data-focus': 'delete', onclick: () => done(deleteTask(task))}, 'Delete task'),
      ),
      progressView(task),
    ]);
    renderIfChanged(fields, JSON.stringify(definition), () => [
      h('h2', {id: 'fields-title'}, 'Task'),
      h('dl', {class: 'fields'}, Object.entries(definition).map(([key, value]) => [h('dt', {}, key), h('dd', {}, fieldValue(key, value))])),
    ]);
    renderIfChanged(attempts, JSON.stringify([task.instances.length, task.status]), () => attemptsView(task));
    renderIfChanged(instances, JSON.stringify([task.instances.length, shown]), () => instancesView(task));
  }

  function progressView(task) {
    const p = task.progress || {};
    const total = p.total ?? task.NumberOfInstances;
    if (!total) {
      return h('p', {class: 'progress-text'}, task.status === 'SCHEDULED' ? 'Not started yet: the number of instances is known once it starts.' : 'No instance count yet.');
    }
    const words = `${p.sent} of ${plural(total, 'instance')} answered: ${p.delivered} delivered, ${p.failed} failed`;
    return h(
      'div',
      {class: 'progress'},
      h('progress', {value: p.sent, max: total, 'aria-label': 'Instances answered'}),
      h('span', {role: task.status === 'IN PROCESS' ? 'status' : null}, task.status === 'IN PROCESS' ? `${words} (live)` : words),
    );
  }

  function attemptsView(task) {
    const byAttempt = new Map();
    for (const r of task.instances) {
      if (!byAttempt.has(r.attempt)) byAttempt.set(r.attempt, {statuses: {}, reasons: new Map(), bytes: 0});
      const a = byAttempt.get(r.attempt);
      a.statuses[r.status] = (a.statuses[r.status] || 0) + 1;
      a.bytes += r.bytes || 0;
      if (r.reason) a.reasons.set(r.reason, (a.reasons.get(r.reason) || 0) + 1);
    }
    const attemptsList = [...byAttempt.entries()].sort((x, y) => x[0] - y[0]);
    const rows = attemptsList.map(([n, a], index) => [
      String(n),
      Object.entries(a.statuses).map(([s, k]) => h('div', {}, `${s.toLowerCase()}:${k}`)),
      bytes(a.bytes),
      h('ul', {class: 'plain'}, [...a.reasons.entries()].map(([reason, k]) => h('li', {}, `${k} × ${reason}`)),
        index === attemptsList.length - 1 && task.outcomeMessage ? h('li', {}, h('strong', {}, 'Outcome: '), task.outcomeMessage) : null),
    ]);
    return [
      h('h2', {id: 'attempts-title'}, 'Attempts'),
      rows.length
        ? table(null, ['Attempt', 'Instances', 'Bytes sent', 'Messages'], rows, {class: 'attempts'})
        : h('p', {class: 'empty'}, task.outcomeMessage || task.errorMessage || 'No attempt yet.'),
      task.failures ? h('p', {}, `Failures so far: ${task.failures}.`) : null,
    ];
  }

  function instancesView(task) {
    const counts = {};
    for (const r of task.instances) counts[r.status] = (counts[r.status] || 0) + 1;
    const filter = h(
      'select',
      {id: 'instance-filter', 'data-focus': 'instance-filter', onchange: (e) => { shown = e.target.value; render(); }},
      h('option', {value: 'all', selected: shown === 'all'}, `All (${task.instances.length})`),
      Object.entries(counts).map(([s, k]) => h('option', {value: s, selected: shown === s}, `${s} (${k})`)),
    );
    const rows = task.instances.filter((r) => shown === 'all' || r.status === shown);
    return [
      h('h2', {id: 'instances-title'}, 'Instances'),
      task.instances.length
        ? [
            h('div', {class: 'field inline'}, h('label', {for: 'instance-filter'}, 'Show'), filter),
            table(
              rows.length > MAX_ROWS ? `The first ${MAX_ROWS} of ${rows.length}` : null,
              ['Attempt', 'SOP Instance UID', 'Status', 'Failure reason', 'Meaning', 'HTTP', 'Size', 'Time', 'Message'],
              rows.slice(0, MAX_ROWS).map(instanceRow),
              {class: 'instances'},
            ),
          ]
        : h('p', {class: 'empty'}, 'No per-instance result yet: they are stored as each STOW-RS answer arrives.'),
    ];
  }

  return {title: `Task ${id}`, refresh};
}

function fieldValue(key, value) {
  if (key === 'status') return statusBadge(value);
  if (TIME_FIELDS.includes(key)) return h('time', {datetime: value}, `${value} (${shortTime(value)})`);
  if (Array.isArray(value)) return value.join(', ');
  return String(value);
}

function instanceRow(r) {
  const code = r.FailureReason;
  const meaning = reasonMeaning(code);
  return h(
    'tr',
    {class: r.status === 'FAILED' || r.status === 'MISSING' ? 'bad' : null},
    h('td', {class: 'num'}, String(r.attempt)),
    h('td', {}, uid(r.SOPInstanceUID, 10)),
    h('td', {}, statusBadge(r.status)),
    h('td', {class: 'code'}, code === undefined ? '' : hex(code)),
    h('td', {}, meaning ? [meaning.meaning, meaning.retry === null ? '' : h('small', {class: 'hint block'}, retryText(meaning.retry))] : ''),
    h('td', {class: 'num'}, r.httpStatus ?? ''),
    h('td', {class: 'num'}, r.bytes ? bytes(r.bytes) : ''),
    h('td', {class: 'num'}, r.elapsed !== undefined ? `${r.elapsed.toFixed(3)} s` : ''),
    h('td', {class: 'message', title: r.reason || ''}, r.reason || ''),
  );
}
