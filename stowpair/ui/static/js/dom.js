// Small DOM helpers. Text always goes in as text (never as HTML): task messages, UIDs
// and error texts come from the network.

/** h('button', {class: 'x', onclick: f}, 'text', child, ...) */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, '');
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replace the children of `container`, keeping the keyboard focus where it was: the
 * focused element's `data-focus` key is looked up again in the new content. Pages are
 * refreshed every few seconds; without this a keyboard user would lose their place.
 */
export function replaceKeepingFocus(container, ...children) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focus : undefined;
  container.replaceChildren();
  append(container, children);
  if (key) {
    const again = container.querySelector(`[data-focus="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

/** Re-render `container` only when `signature` differs from the last one. */
export function renderIfChanged(container, signature, render) {
  if (container.dataset.signature === signature) return false;
  container.dataset.signature = signature;
  replaceKeepingFocus(container, render());
  return true;
}

/** A table with a caption, a header row and body rows (arrays of cells or <tr>). */
export function table(caption, headers, rows, attrs = {}) {
  return h(
    'table',
    attrs,
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {scope: 'col'}, x)))),
    h('tbody', {}, rows.map((row) => (row instanceof Node ? row : h('tr', {}, row.map(cell))))),
  );
}

function cell(value) {
  return value instanceof Node && value.tagName === 'TD' ? value : h('td', {}, value);
}

/** Local time as "2025-06-02 10:00:01", or "10:00:01" when it is today. */
export function shortTime(text) {
  if (!text) return '';
  const date = new Date(text.replace(/([+-]\d\d)(\d\d)$/, '$1:$2'));
  if (Number.isNaN(date.getTime())) return text;
  const pad = (n) => String(n).padStart(2, '0');
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return time;
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

export function timeCell(text) {
  return h('td', {class: 'time'}, text ? h('time', {datetime: text, title: text}, shortTime(text)) : '');
}

/** A long UID shortened in the middle; the full value in the title and for copying. */
export function uid(value, keep = 12) {
  if (!value) return '';
  if (value.length <= keep * 2 + 1) return h('span', {class: 'uid'}, value);
  return h('span', {class: 'uid', title: value}, `${value.slice(0, keep)}…${value.slice(-keep)}`);
}

export function bytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "2025-06-02T10:00" (datetime-local) -> DICOM DT "20250602100000". */
export function dicomDateTime(local) {
  if (!local) return '';
  const digits = local.replace(/[-:T]/g, '');
  return (digits + '000000').slice(0, 14);
}

/** "2025-06-02" (date input) -> DICOM DA "20250602". */
export function dicomDate(local) {
  return local ? local.replace(/-/g, '') : '';
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}
