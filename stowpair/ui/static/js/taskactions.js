// Cancel, reschedule and delete: of one task (204, or an error) and of every task
// matching the filter (dcm4chee's 200 {"count"}, 202 {"count","failed"}, 409 {"failed"},
// shown as they came). No request body: only the path and the query say what to do.

import {post, remove} from './api.js';
import {confirm, exporterSelect, field, modal, say} from './dialogs.js';
import {dicomDateTime, h, plural} from './dom.js';
import {apiFilter, basePath, describeFilter} from './filters.js';

function taskText(task) {
  return `Task ${task.taskID} (${task.ExporterID}, ${task.status})`;
}

function failed(what, error) {
  const status = error.status ? `HTTP ${error.status}: ` : '';
  say(`${what}: ${status}${error.message}`, 'error');
}

export async function cancelTask(task) {
  const ok = await modal({
    title: `Cancel task ${task.taskID}?`,
    text: `${taskText(task)} will not be exported${task.status === 'IN PROCESS' ? ' further (requests in flight finish)' : ''}.`,
    submit: 'Cancel task',
    cancel: 'Keep it',
    danger: true,
  });
  if (!ok) return;
  try {
    await post(`/monitor/export/${task.taskID}/cancel`);
    say(`Task ${task.taskID} cancelled.`);
  } catch (error) {
    failed(`Task ${task.taskID} was not cancelled`, error);
  }
}

async function rescheduleForm(title, text, exporters, current, allowOther = true) {
  const chooser = exporterSelect(allowOther ? exporters : [], current, current ? null : 'Each task\'s own exporter');
  const when = h('input', {type: 'datetime-local', name: 'scheduledTime'});
  const data = await modal({
    title,
    text,
    fields: [
      field('Exporter', chooser, allowOther ? null : 'Another exporter cannot be chosen with a queue filter (/queue has no new exporter); clear the queue filter for that.'),
      field('Scheduled time', when, 'Empty: at once. Local time.'),
    ],
    submit: 'Reschedule',
  });
  if (data === null) return null;
  const exporter = data.get('exporter');
  const scheduled = data.get('scheduledTime');
  return {
    suffix: exporter ? `/${encodeURIComponent(exporter)}` : '',
    exporter,
    query: scheduled ? {scheduledTime: dicomDateTime(scheduled)} : {},
  };
}

async function exporterIDs(context) {
  try {
    const config = await context.configuration();
    return config.exporters.map((e) => e.exporterID);
  } catch {
    return [];
  }
}

export async function rescheduleTask(task, context) {
  const choice = await rescheduleForm(
    `Reschedule task ${task.taskID}`,
    `${taskText(task)} starts again and sends every instance${task.status === 'IN PROCESS' ? ' once its running attempt has stopped' : ''}.`,
    await exporterIDs(context),
    task.ExporterID,
  );
  if (!choice) return;
  try {
    await post(`/monitor/export/${task.taskID}/reschedule${choice.suffix}`, choice.query);
    say(`Task ${task.taskID} rescheduled${choice.exporter ? ` to ${choice.exporter}` : ''}.`);
  } catch (error) {
    failed(`Task ${task.taskID} was not rescheduled`, error);
  }
}

export async function deleteTask(task) {
  const ok = await confirm(
    `Delete task ${task.taskID}?`,
    `${taskText(task)} and its per-instance results are removed${task.status === 'IN PROCESS' ? '; its export is cancelled first' : ''}.`,
    'Delete task',
  );
  if (!ok) return;
  try {
    await remove(`/monitor/export/${task.taskID}`);
    say(`Task ${task.taskID} deleted.`);
    if (window.location.hash.startsWith(`#/tasks/${task.taskID}`)) window.location.hash = '#/tasks';
  } catch (error) {
    failed(`Task ${task.taskID} was not deleted`, error);
  }
}

/** dcm4chee's answer to an operation by filter, in words and as it came. */
export function bulkMessage(done, {status, body}) {
  const answer = `HTTP ${status} ${JSON.stringify(body)}`;
  if (status === 200) return [`${plural(body.count, 'task')} ${done}. (${answer})`, 'ok'];
  if (status === 202) {
    return [`${plural(body.count, 'task')} ${done}; ${body.failed} could not be: they changed meanwhile. (${answer})`, 'warn'];
  }
  return [`No task ${done}: ${body.failed} could not be; they changed meanwhile. (${answer})`, 'error'];
}

function matchingQuery(params) {
  return {...apiFilter(params), status: params.get('status') || ''};
}

async function bulk(done, request) {
  try {
    const answer = await request();
    const [text, kind] = bulkMessage(done, answer);
    say(text, kind);
  } catch (error) {
    failed(`Nothing ${done}`, error);
  }
}

export async function cancelMatching(params, count) {
  const ok = await modal({
    title: `Cancel ${plural(count, 'task')}?`,
    text: [`Every task matching the filter (${describeFilter(params)}) is cancelled.`],
    submit: `Cancel ${plural(count, 'task')}`,
    cancel: 'Keep them',
    danger: true,
  });
  if (!ok) return;
  await bulk('cancelled', () => post(`${basePath(params)}/cancel`, matchingQuery(params), {ok: [409]}));
}

export async function rescheduleMatching(params, count, context) {
  const choice = await rescheduleForm(
    `Reschedule ${plural(count, 'task')}`,
    `Every task matching the filter (${describeFilter(params)}) starts again and sends every instance.`,
    await exporterIDs(context),
    null,
    !params.get('queue'),
  );
  if (!choice) return;
  const path = `${basePath(params)}/reschedule${choice.suffix}`;
  await bulk('rescheduled', () => post(path, {...matchingQuery(params), ...choice.query}, {ok: [409]}));
}

export async function deleteMatching(params, count) {
  const every = !Object.values(matchingQuery(params)).some(Boolean) && !params.get('queue');
  const ok = await confirm(
    `Delete ${plural(count, 'task')}?`,
    every
      ? 'There is no filter: EVERY export task and its per-instance results are deleted.'
      : `Every task matching the filter (${describeFilter(params)}) and its per-instance results are deleted; running ones are cancelled first.`,
    `Delete ${plural(count, 'task')}`,
  );
  if (!ok) return;
  await bulk('deleted', () => remove(basePath(params), matchingQuery(params), {ok: [409]}));
}
