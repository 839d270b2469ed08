// Modal dialogs (<dialog>: focus stays inside, Escape cancels) and the message line.

import {h} from './dom.js';

/**
 * Show a modal form; resolves to the FormData when `submit` is pressed, or null when
 * cancelled. `fields` are elements placed between the text and the buttons.
 */
export function modal({title, text = [], fields = [], submit, danger = false, cancel = 'Cancel'}) {
  return new Promise((resolve) => {
    const form = h(
      'form',
      {method: 'dialog'},
      h('h2', {id: 'dialog-title'}, title),
      [text].flat().map((line) => h('p', {}, line)),
      fields,
      h(
        'div',
        {class: 'buttons'},
        h('button', {type: 'button', class: 'secondary', value: 'cancel', onclick: () => close(null)}, cancel),
        h('button', {type: 'submit', class: danger ? 'danger' : 'primary', value: 'ok'}, submit),
      ),
    );
    const dialog = h('dialog', {'aria-labelledby': 'dialog-title'}, form);
    let done = false;
    function close(value) {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    }
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      close(new FormData(form));
    });
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault();
      close(null);
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = dialog.querySelector('[autofocus]') || dialog.querySelector('input, select, textarea, button[type=submit]');
    if (first) first.focus();
  });
}

export function confirm(title, text, submit, danger = true) {
  return modal({title, text, submit, danger}).then((data) => data !== null);
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h(
    'div',
    {class: 'field'},
    h('label', {for: id}, label),
    input,
    hint ? h('small', {class: 'hint'}, hint) : null,
  );
}

/** Exporter choice for reschedule: the task's own, or another configured one. */
export function exporterSelect(exporters, current, sameLabel) {
  return h(
    'select',
    {name: 'exporter'},
    h('option', {value: ''}, sameLabel || (current ? `Same exporter (${current})` : 'Same exporter')),
    exporters
      .filter((e) => e !== current)
      .map((e) => h('option', {value: e}, e)),
  );
}

let messageTimer = null;

/** The message line under the header: what an action did, or why it failed. */
export function say(text, kind = 'ok') {
  const line = document.getElementById('message');
  line.replaceChildren(
    h('span', {}, text),
    h('button', {type: 'button', class: 'link', 'aria-label': 'Dismiss message', onclick: () => line.replaceChildren()}, '×'),
  );
  line.className = `flash ${kind}`;
  clearTimeout(messageTimer);
  if (kind === 'ok') messageTimer = setTimeout(() => line.replaceChildren(), 15000);
}
