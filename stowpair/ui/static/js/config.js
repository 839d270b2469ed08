// The running configuration (GET /ctrl/config: effective values, secrets masked), the
// last reload and its result, and a reload button (POST /ctrl/reload: 204 or 409).

import {post} from './api.js';
import {say} from './dialogs.js';
import {h, renderIfChanged, shortTime, table} from './dom.js';

const DCM4CHEE_PROPERTIES = [
  'chunked', 'concurrency', 'transfer-syntax', 'bearer-token', 'basic-auth',
  'allow-any-hostname', 'disable-trust-manager',
];

export function mount(main, context) {
  const reloadButton = h('button', {type: 'button', class: 'primary', onclick: reload}, 'Reload configuration');
  const status = h('section', {class: 'reload', 'aria-labelledby': 'reload-title'});
  const body = h('div', {class: 'config'});
  main.append(h('h1', {}, 'Configuration'), status, body);

  async function refresh() {
    const config = await context.configuration(true);
    renderIfChanged(status, JSON.stringify([config.source, config.loadedTime, config.lastReload]), () => reloadView(config));
    renderIfChanged(body, JSON.stringify(config), () => sections(config));
  }

  async function reload() {
    reloadButton.disabled = true;
    try {
      const {status: code, body: answer} = await post('/ctrl/reload', {}, {ok: [409]});
      if (code === 409) {
        const errors = (answer && answer.errors) || [];
        say(`Not reloaded (HTTP 409): ${answer.errorMessage}${errors.length > 1 ? ` — ${errors.length} errors, listed under Last reload` : ''}`, 'error');
      } else {
        say('Configuration reloaded (HTTP 204).');
      }
    } catch (error) {
      say(`Not reloaded: ${error.status ? `HTTP ${error.status}: ` : ''}${error.message}`, 'error');
    } finally {
      reloadButton.disabled = false;
      document.dispatchEvent(new CustomEvent('stowpair-refresh'));
    }
  }

  function reloadView(config) {
    const last = config.lastReload;
    return [
      h('h2', {id: 'reload-title', class: 'sr-only'}, 'Reload'),
      h('dl', {class: 'fields'},
        h('dt', {}, 'File'), h('dd', {}, h('code', {}, config.source || '(none)')),
        h('dt', {}, 'Loaded'), h('dd', {}, timeText(config.loadedTime)),
        h('dt', {}, 'Last reload'),
        h('dd', {}, last
          ? [timeText(last.time), ' ', h('span', {class: `badge ${last.result === 'APPLIED' ? 's-completed' : 's-failed'}`}, last.result),
            last.result === 'APPLIED' ? ` ${last.summary}` : h('ul', {class: 'errors'}, last.errors.map((e) => h('li', {}, e)))]
          : 'none since the service started (SIGHUP or the button below reload it)')),
      reloadButton,
      h('small', {class: 'hint'}, ' Reads the file again; listeners and stores need a restart. An invalid file is refused and the running configuration stays.'),
    ];
  }

  return {title: 'Configuration', refresh};
}

function timeText(value) {
  return value ? h('time', {datetime: value, title: value}, shortTime(value)) : '';
}

function list(values) {
  return values && values.length ? values.join(', ') : '—';
}

function sections(config) {
  return [
    h('section', {'aria-labelledby': 'device-title'},
      h('h2', {id: 'device-title'}, 'Device and listeners'),
      h('dl', {class: 'fields'},
        h('dt', {}, 'Device'), h('dd', {}, `${config.device.name} (AE titles ${list(config.device.aeTitles)}, task polling every ${config.device.taskPollingInterval})`),
        h('dt', {}, 'REST API'), h('dd', {}, config.rest),
        h('dt', {}, 'Emulator'), h('dd', {}, config.emulator || 'disabled'),
        h('dt', {}, 'DICOM C-STORE SCP'), h('dd', {}, config.dimse || 'disabled'),
        h('dt', {}, 'STOW-RS ingest'), h('dd', {}, config.ingest))),
    h('section', {'aria-labelledby': 'webapps-title'},
      h('h2', {id: 'webapps-title'}, `Web applications (${config.webapps.length})`),
      config.webapps.length ? config.webapps.map(webapp) : h('p', {class: 'empty'}, 'None configured.')),
    h('section', {'aria-labelledby': 'exporters-title'},
      h('h2', {id: 'exporters-title'}, `Exporters (${config.exporters.length})`),
      config.exporters.length
        ? table(null, ['Exporter ID', 'URI', 'Queue', 'AE title', 'Schedules', 'Description'],
          config.exporters.map((e) => [h('strong', {}, e.exporterID), h('code', {}, e.uri), e.queue, e.aeTitle, list(e.schedules), e.description]))
        : h('p', {class: 'empty'}, 'None configured: nothing can be exported.')),
    h('section', {'aria-labelledby': 'queues-title'},
      h('h2', {id: 'queues-title'}, `Queues (${config.queues.length})`),
      table(null, ['Queue', 'Parallel', 'Retries', 'Retry delay', 'Retry on warning', 'Schedules', 'Purge completed / failed / warning / canceled', 'Exporters'],
        config.queues.map((q) => [
          [h('strong', {}, q.name), q.installed ? '' : ' (not installed: paused)', q.description ? h('small', {class: 'hint block'}, q.description) : ''],
          String(q.maxTasksParallel), String(q.maxRetries),
          `${q.retryDelay} ×${q.retryDelayMultiplier}% up to ${q.maxRetryDelay || 'no cap'}`,
          q.retryOnWarning ? 'yes' : 'no', list(q.schedules),
          [q.purgeCompletedDelay, q.purgeFailedDelay, q.purgeWarningDelay, q.purgeCanceledDelay].map((d) => d || 'never').join(' / '),
          list(q.exporterIDs),
        ]))),
    h('section', {'aria-labelledby': 'rules-title'},
      h('h2', {id: 'rules-title'}, `Export rules (${config.rules.length})`),
      config.rules.length
        ? table(null, ['Rule', 'Entity', 'Exporters', 'Conditions', 'Delay', 'Schedules'],
          config.rules.map((r) => [h('strong', {}, r.name), r.entity, list(r.exporterIDs), r.conditions.length ? r.conditions.join(' and ') : 'always', r.delay, list(r.schedules)]))
        : h('p', {class: 'empty'}, 'None: only REST requests create export tasks.')),
    config.remoteAEs.length
      ? h('section', {'aria-labelledby': 'aes-title'}, h('h2', {id: 'aes-title'}, 'Remote DICOM AEs'),
        table(null, ['AE title', 'Address', 'TLS', 'Installed', 'Description'],
          config.remoteAEs.map((a) => [a.aeTitle, a.address, a.tls ? 'yes' : 'no', a.installed ? 'yes' : 'no', a.description])))
      : null,
    config.keycloakClients.length
      ? h('section', {'aria-labelledby': 'kc-title'}, h('h2', {id: 'kc-title'}, 'Keycloak / OAuth 2.0 clients'),
        table(null, ['Client', 'Settings'], config.keycloakClients.map((c) => [c.name, c.summary])))
      : null,
  ];
}

function webapp(app) {
  const names = Object.keys(app.properties);
  const row = (name) => [h('code', {}, name), h('code', {}, app.properties[name])];
  return h('article', {class: 'webapp', 'aria-label': `Web application ${app.name}`},
    h('h3', {}, app.name, app.installed ? '' : ' (not installed)'),
    h('dl', {class: 'fields'},
      h('dt', {}, 'STOW-RS URL'), h('dd', {}, h('code', {}, app.studiesUrl)),
      h('dt', {}, 'Service classes'), h('dd', {}, list(app.serviceClasses)),
      h('dt', {}, 'Authorization'), h('dd', {}, app.auth),
      h('dt', {}, 'Used by'), h('dd', {}, list(app.exporterIDs)),
      app.description ? [h('dt', {}, 'Description'), h('dd', {}, app.description)] : null),
    h('div', {class: 'columns'},
      table('dcm4chee properties', ['Property', 'Effective value'], names.filter((n) => DCM4CHEE_PROPERTIES.includes(n)).map(row), {class: 'props'}),
      table('stowpair additions', ['Property', 'Effective value'], names.filter((n) => !DCM4CHEE_PROPERTIES.includes(n)).map(row), {class: 'props'})));
}
