// The task filter: kept in the page's hash (#/tasks?status=FAILED&...), turned into the
// query of the REST API's common filters (docs/rest-api.md).

import {dicomDateTime} from './dom.js';

export const TEXT_FILTERS = ['batchID', 'StudyInstanceUID'];
const TIME_FILTERS = ['createdFrom', 'createdTo', 'updatedFrom', 'updatedTo'];
/** The hash parameters that filter (everything but paging). */
export const FILTER_KEYS = ['status', 'ExporterID', 'queue', ...TEXT_FILTERS, ...TIME_FILTERS];

/** A DICOM DT range of two datetime-local values, to the minute: "to 10:05" includes
 * 10:05:59 (the API reads a partial DT as the whole minute). */
function range(from, to) {
  if (!from && !to) return '';
  const dt = (local) => dicomDateTime(local).slice(0, 12);
  return `${from ? dt(from) : ''}-${to ? dt(to) : ''}`;
}

/** The REST query of the filter in the hash (without status, offset and limit). */
export function apiFilter(params) {
  const query = {};
  if (params.get('ExporterID')) query.ExporterID = params.get('ExporterID');
  for (const key of TEXT_FILTERS) if (params.get(key)) query[key] = params.get(key).trim();
  const created = range(params.get('createdFrom'), params.get('createdTo'));
  const updated = range(params.get('updatedFrom'), params.get('updatedTo'));
  if (created) query.createdTime = created;
  if (updated) query.updatedTime = updated;
  return query;
}

/** /monitor/export, or /queue/{queue} when the filter names a queue. */
export function basePath(params) {
  const queue = params.get('queue');
  return queue ? `/queue/${encodeURIComponent(queue)}` : '/monitor/export';
}

/** The filter in words, for confirmations. */
export function describeFilter(params) {
  const parts = [];
  const add = (label, key) => params.get(key) && parts.push(`${label} ${params.get(key)}`);
  add('status', 'status');
  add('exporter', 'ExporterID');
  add('queue', 'queue');
  add('batch', 'batchID');
  add('study', 'StudyInstanceUID');
  const span = (label, from, to) => {
    if (params.get(from) || params.get(to)) {
      parts.push(`${label} ${params.get(from) || '…'} to ${params.get(to) || '…'}`);
    }
  };
  span('created', 'createdFrom', 'createdTo');
  span('updated', 'updatedFrom', 'updatedTo');
  return parts.length ? parts.join(', ') : 'no filter: every task';
}

export function hasFilter(params) {
  return FILTER_KEYS.some((key) => params.get(key));
}
