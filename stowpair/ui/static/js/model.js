// Task statuses (dcm4chee's strings) and what DICOM Failure/Warning Reasons mean.

import {h} from './dom.js';

export const STATUSES = [
  'SCHEDULED',
  'SCHEDULED FOR RETRY',
  'IN PROCESS',
  'COMPLETED',
  'WARNING',
  'FAILED',
  'CANCELED',
];
/** Statuses a cancel applies to (dcm4chee refuses the others). */
export const CANCELLABLE = ['SCHEDULED', 'SCHEDULED FOR RETRY', 'IN PROCESS'];

export function statusLabel(status) {
  const text = status.toLowerCase();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function statusBadge(status) {
  return h('span', {class: `badge s-${status.replace(/ /g, '-').toLowerCase()}`}, status);
}

// PS3.18 Table I.2-1 and I.2-2, PS3.7 Annex C: the codes a STOW-RS server answers per
// instance. `retry`: whether a later attempt may succeed (stowpair retries those; an
// instance refused for good is not sent again until the task is rescheduled).
const RANGES = [
  [0xa700, 0xa7ff, 'Refused: out of resources', true],
  [0xa900, 0xa9ff, 'Error: data set does not match SOP Class', false],
  [0xc000, 0xcfff, 'Error: cannot understand', false],
];
const CODES = {
  0x0110: ['Processing failure', true],
  0x0111: ['Duplicate SOP Instance (stored already with other content)', false],
  0x0112: ['No such SOP Instance', false],
  0x0117: ['Invalid SOP Instance', false],
  0x0118: ['No such SOP Class', false],
  0x0119: ['Class-Instance conflict', false],
  0x0122: ['Refused: SOP Class not supported', false],
  0x0124: ['Refused: not authorized', false],
  0x0210: ['Duplicate invocation', false],
  0x0211: ['Unrecognized operation', false],
  0x0212: ['Mistyped argument', false],
  0x0213: ['Resource limitation', true],
  0xa700: ['Refused: out of resources', true],
  0xa900: ['Error: data set does not match SOP Class', false],
  0xc000: ['Error: cannot understand', false],
  0xc122: ['Referenced Transfer Syntax not supported', false],
  0xb000: ['Warning: coercion of data elements', null],
  0xb006: ['Warning: elements discarded', null],
  0xb007: ['Warning: data set does not match SOP Class', null],
};

export function hex(code) {
  return `0x${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** {meaning, retry} of a Failure or Warning Reason; retry null for warnings. */
export function reasonMeaning(code) {
  if (code === undefined || code === null) return null;
  if (CODES[code]) return {meaning: CODES[code][0], retry: CODES[code][1]};
  for (const [low, high, meaning, retry] of RANGES) {
    if (code >= low && code <= high) return {meaning, retry};
  }
  return {meaning: 'Not a code of PS3.18 Table I.2-2', retry: false};
}

export function retryText(retry) {
  if (retry === null || retry === undefined) return '';
  return retry ? 'a retry may succeed' : 'refused for good: not sent again until rescheduled';
}
