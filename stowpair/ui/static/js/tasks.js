// Export tasks, like dcm4chee's Monitoring → Export: counts per status, filters,
// paging, and cancel / reschedule / delete for one task or every task matching the
// filter. Routes: GET /monitor/export[/count] (or /queue/{queue}[/count] with a queue
// filter), POST .../cancel, POST .../reschedule[/{exporter}], DELETE.

import {get} from './api.js';
import {apiFilter, basePath, describeFilter, hasFilter} from './filters.js';
import {
  h,
  plural,
  renderIfChanged,
  table,
  timeCell,
  uid,
} from './dom.js';
import {
  cancelMatching,
  cancelTask,
  deleteMatching,
  deleteTask,
  rescheduleMatching,
  rescheduleTask,
} from './taskactions.js';
import {CANCELLABLE, STATUSES, statusBadge, statusLabel} from './model.js';

const PAGE_SIZES = ['20', '50', '100'];
/** In-process tasks whose progress is fetched per refresh (GET /monitor/export/{id}). */
const MAX_PROGRESS = 5;

export function mount(main, context) {
  let params = context.params;
  let last = null; // the data of the last refresh
  const exporterSelect = h('select', {name: 'ExporterID', id: 'filter-exporter'}, h('option', {value: ''}, 'Any'));
  const queueSelect = h('select', {name: 'queue', id: 'filter-queue'}, h('option', {value: ''}, 'Any'));
  const statusSelect = h(
    'select',
    {name: 'status', id: 'filter-status'},
    h('option', {value: ''}, 'Any'),
    STATUSES.map((s) => h('option', {value: s}, statusLabel(s))),
  );
  const text = (name, label, attrs = {}) => labelled(label, h('input', {name, id: `filter-${name}`, ...attrs}));
  const time = (name, label) => labelled(label, h('input', {name, id: `filter-${name}`, type: 'datetime-local'}));
  const form = h(
    'form',
    {class: 'filters', 'aria-label': 'Filter tasks', onsubmit: applyFilter},
    labelled('Status', statusSelect),
    labelled('Exporter', exporterSelect),
    labelled('Queue', queueSelect),
    text('batchID', 'Batch ID', {size: 10}),
    text('StudyInstanceUID', 'Study Instance UID', {size: 24, inputmode: 'numeric', pattern: '[0-9.]*', title: 'digits and dots'}),
    time('createdFrom', 'Created from'),
    time('createdTo', 'Created to'),
    time('updatedFrom', 'Updated from'),
    time('updatedTo', 'Updated to'),
    h(
      'div',
      {class: 'buttons'},
      h('button', {type: 'submit', class: 'primary'}, 'Apply filter'),
      h('button', {type: 'button', class: 'secondary', onclick: () => navigate(new URLSearchParams())}, 'Clear'),
    ),
  );
  const counts = h('div', {class: 'counts', role: 'group', 'aria-label': 'Tasks per status; choose one to filter'});
  const bulk = h('section', {class: 'bulk', 'aria-label': 'Actions on every task matching the filter'});
  const list = h('div', {class: 'list'});
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages of tasks'});
  main.append(h('h1', {}, 'Export tasks'), counts, form, bulk, list, pager);

  context.configuration().then((config) => {
    fillOptions(exporterSelect, config.exporters.map((e) => e.exporterID));
    fillOptions(queueSelect, config.queues.map((q) => q.name));
    showParams();
  }).catch(() => {});
  showParams();

  function labelled(label, input) {
    return h('div', {class: 'field'}, h('label', {for: input.id}, label), input);
  }

  function fillOptions(select, names) {
    const keep = select.value;
    const wanted = params.get(select.name);
    const all = [...new Set([...names, ...(wanted ? [wanted] : [])])];
    select.replaceChildren(h('option', {value: ''}, 'Any'), all.map((n) => h('option', {value: n}, n)));
    select.value = wanted || keep;
  }

  function showParams() {
    for (const element of form.elements) {
      if (element.name) element.value = params.get(element.name) || '';
    }
  }

  function navigate(next) {
    const query = next.toString();
    window.location.hash = `#/tasks${query ? `?${query}` : ''}`;
  }

  function applyFilter(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const element of form.elements) {
      if (element.name && element.value.trim()) next.set(element.name, element.value.trim());
    }
    if (params.get('limit')) next.set('limit', params.get('limit'));
    navigate(next);
  }

  function withParam(name, value) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    if (name !== 'offset') next.delete('offset');
    return next;
  }

  async function refresh() {
    const base = basePath(params);
    const filter = apiFilter(params);
    const status = params.get('status') || '';
    const limit = Number(params.get('limit')) || 20;
    const offset = Number(params.get('offset')) || 0;
    const [page, all, ...perStatus] = await Promise.all([
      get(base, {...filter, status, offset, limit, orderby: '-updatedTime'}),
      get(`${base}/count`, filter),
      ...STATUSES.map((s) => get(`${base}/count`, {...filter, status: s})),
    ]);
    const tasks = page.body || [];
    const running = tasks.filter((t) => t.status === 'IN PROCESS').slice(0, MAX_PROGRESS);
    const details = await Promise.all(
      running.map((t) => get(`/monitor/export/${t.taskID}`).then((r) => r.body, () => null)),
    );
    const progress = {};
    for (const detail of details) if (detail) progress[detail.taskID] = detail.progress;
    const byStatus = Object.fromEntries(STATUSES.map((s, i) => [s, perStatus[i].body.count]));
    const matching = status ? byStatus[status] ?? 0 : all.body.count;
    last = {tasks, progress, byStatus, all: all.body.count, matching, offset, limit, status};
    render();
  }

  function render() {
    const data = last;
    renderIfChanged(counts, JSON.stringify([data.byStatus, data.all, data.status]), () => statusCounts(data));
    renderIfChanged(bulk, JSON.stringify([data.matching, params.toString()]), () => bulkActions(data));
    renderIfChanged(list, JSON.stringify([data.tasks, data.progress, params.toString()]), () => taskTable(data));
    renderIfChanged(pager, JSON.stringify([data.matching, data.offset, data.limit, data.tasks.length]), () => paging(data));
  }

  function statusCounts(data) {
    const tile = (label, value, count) =>
      h(
        'a',
        {
          class: `count${value ? ` s-${value.replace(/ /g, '-').toLowerCase()}` : ''}`,
          href: `#/tasks?${withParam('status', value)}`,
          'aria-current': (params.get('status') || '') === value ? 'true' : null,
          'data-focus': `count-${value || 'all'}`,
        },
        h('span', {class: 'n'}, String(count)),
        h('span', {class: 'label'}, label),
      );
    return [
      tile('All', '', data.all),
      STATUSES.map((s) => tile(statusLabel(s), s, data.byStatus[s])),
    ];
  }

  function bulkActions(data) {
    const status = params.get('status') || '';
    const cancellable = CANCELLABLE.includes(status);
    const none = data.matching === 0;
    const refreshAfter = () => document.dispatchEvent(new CustomEvent('stowpair-refresh'));
    const act = (fn) => async () => {
      await fn(params, data.matching, context);
      refreshAfter();
    };
    return [
      h('p', {}, h('strong', {}, plural(data.matching, 'task')), ' match the filter',
        hasFilter(params) ? ` (${describeFilter(params)})` : ' (no filter: every task)', '.'),
      h(
        'div',
        {class: 'buttons'},
        h('button', {
          type: 'button', class: 'secondary', disabled: none || !cancellable, 'data-focus': 'bulk-cancel',
          title: cancellable ? null : 'Choose the status Scheduled, Scheduled for retry or In process first',
          onclick: act(cancelMatching),
        }, 'Cancel matching…'),
        h('button', {type: 'button', class: 'secondary', disabled: none, 'data-focus': 'bulk-reschedule', onclick: act(rescheduleMatching)}, 'Reschedule matching…'),
        h('button', {type: 'button', class: 'secondary danger-text', disabled: none, 'data-focus': 'bulk-delete', onclick: act(deleteMatching)}, 'Delete matching…'),
      ),
      cancellable || none ? null : h('small', {class: 'hint'}, 'Cancel by filter needs the status Scheduled, Scheduled for retry or In process (as in dcm4chee).'),
    ];
  }

  function taskTable(data) {
    if (data.tasks.length === 0) return emptyState();
    // a cluster (docs/cluster.md): which node holds or last ran each task, when the
    // tasks listed were run by more than one
    const nodes = new Set(data.tasks.map((task) => task.dicomDeviceName));
    const withNode = nodes.size > 1;
    const rows = data.tasks.map((task) => taskRow(task, data.progress[task.taskID], withNode));
    return table(
      `Tasks ${data.offset + 1}–${data.offset + data.tasks.length} of ${data.matching}, most recently updated first`,
      ['ID', 'Status', ...(withNode ? ['Node'] : []), 'Exporter', 'Queue', 'Batch', 'Study', 'Instances', 'Created', 'Updated', 'Message', h('span', {class: 'sr-only'}, 'Actions')],
      rows,
      {class: 'tasks'},
    );
  }

  function taskRow(task, progress, withNode) {
    const id = task.taskID;
    const done = (promise) => promise.then(() => document.dispatchEvent(new CustomEvent('stowpair-refresh')));
    const message = task.outcomeMessage || task.errorMessage || '';
    // "Export Study[uid=1.2.826…] to x - completed:20": the entity is in the Study
    // column, the counts at the end matter (the full text is the cell's title)
    const shown = message.replace(/^Export \w+\[uid=[^\]]*\]\s*/, '');
    const total = task.NumberOfInstances;
    const instances = progress && progress.total
      ? h('span', {}, `${progress.sent}/${progress.total}`, h('progress', {value: progress.sent, max: progress.total, 'aria-label': `Task ${id}: ${progress.sent} of ${progress.total} instances answered`}))
      : total ?? '';
    return h(
      'tr',
      {'data-task': id},
      h('td', {class: 'num'}, h('a', {href: `#/tasks/${id}`, 'data-focus': `task-${id}`, 'aria-label': `Task ${id} details`}, String(id))),
      h('td', {}, statusBadge(task.status)),
      withNode ? h('td', {class: 'node'}, task.dicomDeviceName || '') : null,
      h('td', {}, task.ExporterID || ''),
      h('td', {}, task.queue || ''),
      h('td', {class: 'batch', title: task.batchID || null}, task.batchID || ''),
      h('td', {}, uid(task.StudyInstanceUID, 7)),
      h('td', {class: 'num'}, instances),
      timeCell(task.createdTime),
      timeCell(task.updatedTime),
      h('td', {class: 'message', title: message}, shown),
      h(
        'td',
        {class: 'actions'},
        h('button', {type: 'button', class: 'small', disabled: !CANCELLABLE.includes(task.status), 'data-focus': `cancel-${id}`, 'aria-label': `Cancel task ${id}`, onclick: () => done(cancelTask(task))}, 'Cancel'),
        h('button', {type: 'button', class: 'small', 'data-focus': `reschedule-${id}`, 'aria-label': `Reschedule task ${id}`, onclick: () => done(rescheduleTask(task, context))}, 'Reschedule'),
        h('button', {type: 'button', class: 'small danger-text', 'data-focus': `delete-${id}`, 'aria-label': `Delete task ${id}`, onclick: () => done(deleteTask(task))}, 'Delete'),
      ),
    );
  }

  function emptyState() {
    if (hasFilter(params)) {
      return h('div', {class: 'empty'},
        h('p', {}, h('strong', {}, 'No export task matches this filter.')),
        h('p', {}, h('a', {href: '#/tasks', 'data-focus': 'clear'}, 'Clear the filter')));
    }
    return h('div', {class: 'empty'},
      h('p', {}, h('strong', {}, 'No export tasks yet.')),
      h('p', {}, 'A task appears here when an export rule fires for a received study, or when you ',
        h('a', {href: '#/studies'}, 'export a study'), ' yourself.'));
  }

  function paging(data) {
    const {offset, limit, matching} = data;
    const previous = Math.max(0, offset - limit);
    const size = h(
      'select',
      {id: 'page-size', 'data-focus': 'page-size', onchange: (e) => navigate(withParam('limit', e.target.value))},
      PAGE_SIZES.map((n) => h('option', {value: n, selected: Number(n) === limit}, n)),
    );
    const link = (label, to, enabled, key) => enabled
      ? h('a', {href: `#/tasks?${withParam('offset', to ? String(to) : '')}`, 'data-focus': key}, label)
      : h('span', {class: 'disabled', 'aria-disabled': 'true'}, label);
    return [
      link('‹ Previous', previous, offset > 0, 'previous'),
      h('span', {}, matching ? `${offset + 1}–${Math.min(offset + limit, matching)} of ${matching}` : '0 tasks'),
      link('Next ›', offset + limit, offset + limit < matching, 'next'),
      h('label', {for: 'page-size'}, 'Per page'),
      size,
    ];
  }

  return {
    title: 'Export tasks',
    refresh,
    update(next) {
      params = next;
      showParams();
    },
  };
}
