// Studies in the archive (QIDO-RS GET /aets/{AET}/rs/studies, DICOM JSON) with an
// "Export to…" action: POST /aets/{AET}/rs/studies/{uid}/export/{ExporterID}.

import {post, get} from './api.js';
import {field, modal, say} from './dialogs.js';
import {dicomDate, dicomDateTime, h, plural, renderIfChanged, table, uid} from './dom.js';

const PAGE = 20;

function value(study, tag) {
  const attribute = study[tag];
  return attribute && attribute.Value ? attribute.Value : [];
}

export function mount(main, context) {
  let params = context.params;
  let last = null;
  const input = (name, label, attrs = {}) =>
    h('div', {class: 'field'}, h('label', {for: `study-${name}`}, label), h('input', {id: `study-${name}`, name, ...attrs}));
  const form = h(
    'form',
    {class: 'filters', 'aria-label': 'Search studies', onsubmit: search},
    input('StudyInstanceUID', 'Study Instance UID', {size: 28, pattern: '[0-9.]*', title: 'digits and dots'}),
    input('PatientID', 'Patient ID', {size: 12}),
    input('ModalitiesInStudy', 'Modality', {size: 4, placeholder: 'CT'}),
    h('fieldset', {}, h('legend', {}, 'Study date'),
      input('dateFrom', 'from', {type: 'date'}), input('dateTo', 'to', {type: 'date'})),
    h('div', {class: 'buttons'},
      h('button', {type: 'submit', class: 'primary'}, 'Search'),
      h('button', {type: 'button', class: 'secondary', onclick: () => go(new URLSearchParams())}, 'Clear')),
  );
  const totals = h('p', {class: 'totals', role: 'status'});
  const list = h('div', {class: 'list'});
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages of studies'});
  main.append(h('h1', {}, 'Studies in the archive'), totals, form, list, pager);
  showParams();

  function showParams() {
    for (const element of form.elements) if (element.name) element.value = params.get(element.name) || '';
  }

  function go(next) {
    const query = next.toString();
    window.location.hash = `#/studies${query ? `?${query}` : ''}`;
  }

  function search(event) {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const element of form.elements) {
      if (element.name && element.value.trim()) next.set(element.name, element.value.trim());
    }
    go(next);
  }

  function query() {
    const q = {};
    for (const key of ['StudyInstanceUID', 'PatientID', 'ModalitiesInStudy']) {
      if (params.get(key)) q[key] = key === 'ModalitiesInStudy' ? params.get(key).toUpperCase() : params.get(key);
    }
    const from = dicomDate(params.get('dateFrom'));
    const to = dicomDate(params.get('dateTo'));
    if (from || to) q.StudyDate = from === to ? from : `${from}-${to}`;
    return q;
  }

  async function refresh() {
    const config = await context.configuration();
    const aet = config.device.aeTitles[0];
    const rs = `/aets/${encodeURIComponent(aet)}/rs`;
    const q = query();
    const offset = Number(params.get('offset')) || 0;
    const [found, archive, matching] = await Promise.all([
      get(`${rs}/studies`, {...q, offset, limit: PAGE}, {accept: 'application/dicom+json'}),
      Promise.all(['studies', 'series', 'instances'].map((level) => get(`${rs}/${level}/count`))),
      get(`${rs}/studies/count`, q),
    ]);
    last = {
      aet,
      exporters: config.exporters,
      studies: found.body || [],
      archive: archive.map((r) => r.body.count),
      matching: matching.body.count,
      offset,
    };
    render();
  }

  function render() {
    const [studies, series, instances] = last.archive;
    renderIfChanged(totals, JSON.stringify(last.archive), () =>
      `The archive holds ${plural(studies, 'study', 'studies')}, ${plural(series, 'series', 'series')} and ${plural(instances, 'instance')}.`);
    renderIfChanged(list, JSON.stringify([last.studies, last.exporters]), () => studyTable());
    renderIfChanged(pager, JSON.stringify([last.matching, last.offset]), () => paging());
  }

  function studyTable() {
    if (!last.studies.length) {
      if ([...params.keys()].some((k) => k !== 'offset')) {
        return h('div', {class: 'empty'}, h('p', {}, h('strong', {}, 'No study matches this search.')),
          h('p', {}, h('a', {href: '#/studies'}, 'Show every study')));
      }
      return h('div', {class: 'empty'},
        h('p', {}, h('strong', {}, 'The archive holds no study yet.')),
        h('p', {}, 'Store one with STOW-RS (POST ', h('code', {}, `/dcm4chee-arc/aets/${last.aet}/rs/studies`),
          '), with ', h('code', {}, 'stowpair import FOLDER'), ', or from any DICOM sender (C-STORE).'));
    }
    const rows = last.studies.map((study) => {
      const studyUID = value(study, '0020000D')[0];
      const date = value(study, '00080020')[0] || '';
      return [
        uid(studyUID, 14),
        value(study, '00100020')[0] || '',
        date ? `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}` : '',
        value(study, '00080061').join(', '),
        h('td', {class: 'num'}, String(value(study, '00201206')[0] ?? '')),
        h('td', {class: 'num'}, String(value(study, '00201208')[0] ?? '')),
        h('td', {class: 'actions'},
          h('a', {href: `#/tasks?StudyInstanceUID=${encodeURIComponent(studyUID)}`, 'data-focus': `tasks-${studyUID}`}, 'Tasks'),
          ' ',
          h('button', {type: 'button', class: 'small', 'data-focus': `export-${studyUID}`, 'aria-label': `Export study ${studyUID} to…`, onclick: () => exportStudy(studyUID)}, 'Export to…')),
      ];
    });
    return table(
      `Studies ${last.offset + 1}–${last.offset + last.studies.length} of ${last.matching}, most recently received first`,
      ['Study Instance UID', 'Patient ID', 'Study date', 'Modalities', 'Series', 'Instances', h('span', {class: 'sr-only'}, 'Actions')],
      rows,
      {class: 'studies'},
    );
  }

  async function exportStudy(studyUID) {
    const exporters = last.exporters;
    if (!exporters.length) {
      say('No exporter is configured: add one to the configuration file and reload it.', 'error');
      return;
    }
    const choices = h(
      'fieldset',
      {class: 'choices'},
      h('legend', {}, 'Exporter'),
      exporters.map((e, i) => h('label', {class: 'choice'},
        h('input', {type: 'radio', name: 'exporter', value: e.exporterID, checked: i === 0, required: true}),
        h('span', {}, h('strong', {}, e.exporterID), ` ${e.uri}, queue ${e.queue}`, e.description ? ` — ${e.description}` : ''))),
    );
    const data = await modal({
      title: 'Export study',
      text: [h('span', {class: 'uid'}, studyUID)],
      fields: [
        choices,
        field('Batch ID', h('input', {name: 'batchID', size: 16}), 'Optional: groups tasks (filter by it on Export tasks).'),
        field('Scheduled time', h('input', {name: 'scheduledTime', type: 'datetime-local'}), 'Empty: at once. Local time.'),
      ],
      submit: 'Export',
    });
    if (data === null) return;
    const exporter = data.get('exporter');
    const q = {};
    if (data.get('batchID')) q.batchID = data.get('batchID');
    if (data.get('scheduledTime')) q.scheduledTime = dicomDateTime(data.get('scheduledTime'));
    const path = `/aets/${encodeURIComponent(last.aet)}/rs/studies/${encodeURIComponent(studyUID)}/export/${encodeURIComponent(exporter)}`;
    try {
      const {body} = await post(path, q);
      say(`Export of the study to ${exporter} queued: task ${body.taskID} (${body.status}).`);
      const link = h('a', {href: `#/tasks/${body.taskID}`}, `Open task ${body.taskID}`);
      document.getElementById('message').querySelector('span').append(' ', link);
    } catch (error) {
      say(`The study was not exported to ${exporter}: ${error.status ? `HTTP ${error.status}: ` : ''}${error.message}`, 'error');
    }
  }

  function paging() {
    const {offset, matching} = last;
    const at = (o) => {
      const next = new URLSearchParams(params);
      if (o) next.set('offset', String(o));
      else next.delete('offset');
      return `#/studies?${next}`;
    };
    return [
      offset > 0 ? h('a', {href: at(Math.max(0, offset - PAGE)), 'data-focus': 'previous'}, '‹ Previous') : h('span', {class: 'disabled'}, '‹ Previous'),
      h('span', {}, matching ? `${offset + 1}–${Math.min(offset + PAGE, matching)} of ${matching}` : '0 studies'),
      offset + PAGE < matching ? h('a', {href: at(offset + PAGE), 'data-focus': 'next'}, 'Next ›') : h('span', {class: 'disabled'}, 'Next ›'),
    ];
  }

  return {
    title: 'Studies',
    refresh,
    update(next) {
      params = next;
      showParams();
    },
  };
}
