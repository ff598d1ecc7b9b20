/*
 * records.js — the record pages' behaviour (plain ES2017; no inline scripts: the CSP forbids them).
 *
 *  - tabs ([data-tabs] buttons with data-tab="panel id"), switching to the first tab
 *    holding an error when a form comes back with messages;
 *  - reference pickers ([data-picker]): type-ahead over the target's title through
 *    records.search (an htmx partial), arrow keys and Enter to pick; the picked record's
 *    fields go on the input as data-record, so rules reading account.tier see them;
 *  - select colours (the chosen option's colour beside the select);
 *  - datetime inputs keep the ISO form the server reads (YYYY-MM-DDTHH:MM);
 *  - child rows added by form_rules.js get htmx (inline validation) and date pickers;
 *  - kept files can be removed; signatures are drawn on a canvas.
 * Conditional fields, computed values and rows are form_rules.js's.
 */
(function () {
  'use strict';

  var SEARCH_DELAY = 250;

  function changed(el) {
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }

  // --- tabs -----------------------------------------------------------------------------

  function showTab(button) {
    var strip = button.closest('[data-tabs]');
    if (!strip) return;
    strip.querySelectorAll('[role=tab]').forEach(function (tab) {
      var on = tab === button;
      tab.setAttribute('aria-selected', on ? 'true' : 'false');
      var panel = document.getElementById(tab.getAttribute('data-tab'));
      // Tabs that load their panel with htmx share one panel: leave it shown.
      if (panel && !tab.hasAttribute('hx-get')) panel.hidden = !on;
    });
  }

  function openTabWithErrors(root) {
    var error = root.querySelector('.field-errors li, .rule-errors:not(:empty)');
    var panel = error && error.closest('[role=tabpanel]');
    if (!panel || !panel.hidden) return;
    var tab = document.querySelector('[data-tab="' + panel.id + '"]');
    if (tab) showTab(tab);
  }

  // --- reference pickers -------------------------------------------------------------------

  function pickerOf(el) {
    return el.closest('[data-picker]');
  }

  function results(picker) {
    return picker.querySelector('[data-picker-results]');
  }

  function closeResults(picker) {
    var box = results(picker);
    box.hidden = true;
    box.innerHTML = '';
    var search = picker.querySelector('[data-picker-search]');
    if (search) search.setAttribute('aria-expanded', 'false');
  }

  function search(picker) {
    var input = picker.querySelector('[data-picker-search]');
    var text = input.value.trim();
    var box = results(picker);
    if (!text) {
      closeResults(picker);
      return;
    }
    var url = picker.getAttribute('data-search-url') + '?q=' + encodeURIComponent(text);
    var request = fetch(url, {
      headers: { 'HX-Request': 'true' },
      credentials: 'same-origin'
    });
    picker.pendingSearch = request;
    request.then(function (response) {
      return response.ok ? response.text() : '';
    }).then(function (html) {
      if (picker.pendingSearch !== request) return; // a later search answers instead
      box.innerHTML = html;
      box.hidden = !html.trim();
      input.setAttribute('aria-expanded', box.hidden ? 'false' : 'true');
    }).catch(function () { /* offline: nothing to offer */ });
  }

  function pick(picker, option) {
    var id = option.getAttribute('data-pick');
    var title = option.getAttribute('data-title');
    var search = picker.querySelector('[data-picker-search]');
    if (picker.hasAttribute('data-multiple')) {
      var chosen = picker.querySelector('[data-picker-chosen]');
      if (!chosen.querySelector('[data-id="' + id + '"]')) {
        var item = document.createElement('li');
        item.className = 'chip';
        item.setAttribute('data-id', id);
        var hidden = document.createElement('input');
        hidden.type = 'hidden';
        hidden.name = picker.getAttribute('data-name');
        hidden.value = id;
        var remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'link';
        remove.setAttribute('data-picker-remove', '');
        remove.setAttribute('aria-label', '×');
        remove.textContent = '×';
        item.appendChild(hidden);
        item.appendChild(document.createTextNode(title + ' '));
        item.appendChild(remove);
        chosen.appendChild(item);
        changed(hidden);
      }
      search.value = '';
    } else {
      var input = picker.querySelector('input[type=hidden][name="' + picker.getAttribute('data-name') + '"]');
      input.value = id;
      input.setAttribute('data-record', option.getAttribute('data-record') || '{}');
      search.value = title;
      search.setAttribute('data-picked-title', title);
      changed(input);
    }
    closeResults(picker);
  }

  function clearPick(picker) {
    var input = picker.querySelector('input[type=hidden][name="' + picker.getAttribute('data-name') + '"]');
    var search = picker.querySelector('[data-picker-search]');
    if (input && !input.disabled) {
      input.value = '';
      input.removeAttribute('data-record');
      changed(input);
    }
    if (search && !search.readOnly) search.value = '';
    closeResults(picker);
  }

  function activeOption(picker) {
    return results(picker).querySelector('[data-pick].active');
  }

  function move(picker, step) {
    var options = Array.prototype.slice.call(results(picker).querySelectorAll('[data-pick]'));
    if (!options.length) return;
    var index = options.indexOf(activeOption(picker));
    var next = options[(index + step + options.length) % options.length];
    options.forEach(function (o) {
      o.classList.toggle('active', o === next);
      o.setAttribute('aria-selected', o === next ? 'true' : 'false');
    });
    next.scrollIntoView({ block: 'nearest' });
  }

  function onPickerInput(event) {
    var input = event.target;
    if (!input.matches || !input.matches('[data-picker-search]')) return;
    var picker = pickerOf(input);
    clearTimeout(picker.searchTimer);
    picker.searchTimer = setTimeout(function () { search(picker); }, SEARCH_DELAY);
  }

  function onPickerKey(event) {
    var input = event.target;
    if (!input.matches || !input.matches('[data-picker-search]')) return;
    var picker = pickerOf(input);
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      if (results(picker).hidden) search(picker);
      else move(picker, event.key === 'ArrowDown' ? 1 : -1);
    } else if (event.key === 'Enter') {
      // Enter picks; it never submits the form from a picker.
      event.preventDefault();
      var option = activeOption(picker) || results(picker).querySelector('[data-pick]');
      if (option && !results(picker).hidden) pick(picker, option);
    } else if (event.key === 'Escape') {
      closeResults(picker);
    }
  }

  // A single picker whose text no longer names the picked record: put the title back,
  // or, if the text was emptied, clear the reference.
  function onPickerLeave(event) {
    var input = event.target;
    if (!input.matches || !input.matches('[data-picker-search]')) return;
    var picker = pickerOf(input);
    if (picker.hasAttribute('data-multiple')) return;
    setTimeout(function () {
      if (picker.contains(document.activeElement)) return;
      closeResults(picker);
      if (input.readOnly || input.disabled) return;
      if (!input.value.trim()) {
        clearPick(picker);
      } else if (input.hasAttribute('data-picked-title')) {
        input.value = input.getAttribute('data-picked-title');
      }
    }, 150);
  }

  // --- clicks ------------------------------------------------------------------------------

  function onClick(event) {
    var target = event.target;
    if (!target.closest) return;
    var tab = target.closest('[data-tabs] [role=tab]');
    if (tab) {
      showTab(tab);
      return;
    }
    var option = target.closest('[data-pick]');
    if (option && pickerOf(option)) {
      event.preventDefault();
      pick(pickerOf(option), option);
      return;
    }
    if (target.closest('[data-picker-clear]')) {
      event.preventDefault();
      clearPick(pickerOf(target));
      return;
    }
    var remove = target.closest('[data-picker-remove]');
    if (remove) {
      event.preventDefault();
      var chip = remove.closest('[data-id]');
      var field = chip.querySelector('input');
      if (field && field.disabled) return;
      var picker = pickerOf(chip);
      chip.remove();
      changed(picker);
      return;
    }
    var file = target.closest('[data-remove-file]');
    if (file) {
      event.preventDefault();
      var item = file.closest('li');
      var kept = item.querySelector('input[type=hidden]');
      if (kept && kept.disabled) return;
      var wrapper = item.closest('[data-field]') || item.parentElement;
      item.remove();
      changed(wrapper);
      return;
    }
    var clear = target.closest('[data-signature-clear]');
    if (clear) {
      event.preventDefault();
      var box = clear.closest('[data-signature]');
      var pad = box.querySelector('canvas');
      pad.getContext('2d').clearRect(0, 0, pad.width, pad.height);
      var value = box.querySelector('input[type=hidden]');
      if (value && !value.disabled) {
        value.value = '';
        changed(value);
      }
      var kept = box.querySelector('.signature-kept');
      if (kept) kept.remove();
    }
  }

  // --- selects, datetimes, signatures --------------------------------------------------------

  function colourSelect(select) {
    var option = select.options[select.selectedIndex];
    var colour = option && option.getAttribute('data-color');
    var swatch = select.parentElement && select.parentElement.querySelector('.swatch');
    if (swatch) {
      swatch.style.backgroundColor = colour || 'transparent';
      swatch.classList.toggle('shown', !!colour);
    }
  }

  // air-datepicker writes "YYYY-MM-DD HH:MM"; the server and form_rules.js read ISO.
  function isoDateTime(input) {
    var match = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(:\d{2})?)$/.exec(input.value.trim());
    if (match) input.value = match[1] + 'T' + match[2];
  }

  function onChange(event) {
    var el = event.target;
    if (!el.matches) return;
    if (el.matches('input[data-datepicker=datetime]')) isoDateTime(el);
    if (el.matches('.select-wrap select')) colourSelect(el);
  }

  function signaturePad(box) {
    var pad = box.querySelector('canvas');
    var value = box.querySelector('input[type=hidden]');
    if (!pad || pad.signatureReady) return;
    pad.signatureReady = true;
    var context = pad.getContext('2d');
    context.lineWidth = 2;
    context.lineCap = 'round';
    var drawing = false;
    function point(event) {
      var rect = pad.getBoundingClientRect();
      return {
        x: (event.clientX - rect.left) * (pad.width / rect.width),
        y: (event.clientY - rect.top) * (pad.height / rect.height)
      };
    }
    pad.addEventListener('pointerdown', function (event) {
      if (value.disabled || value.hasAttribute('data-rules-read-only')) return;
      drawing = true;
      var p = point(event);
      context.beginPath();
      context.moveTo(p.x, p.y);
      pad.setPointerCapture(event.pointerId);
    });
    pad.addEventListener('pointermove', function (event) {
      if (!drawing) return;
      var p = point(event);
      context.lineTo(p.x, p.y);
      context.stroke();
    });
    pad.addEventListener('pointerup', function () {
      if (!drawing) return;
      drawing = false;
      value.value = pad.toDataURL('image/png');
      changed(value);
    });
  }

  // --- setting up a page, or a part htmx or form_rules.js added ------------------------------

  function setUp(root) {
    root.querySelectorAll('.select-wrap select').forEach(colourSelect);
    root.querySelectorAll('[data-signature]').forEach(signaturePad);
  }

  function watchRows(form) {
    if (typeof MutationObserver === 'undefined') return;
    var observer = new MutationObserver(function (mutations) {
      mutations.forEach(function (mutation) {
        mutation.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (window.htmx) window.htmx.process(node);
          if (window.crm && window.crm.attachDatePickers) window.crm.attachDatePickers(node);
          setUp(node);
        });
      });
    });
    form.querySelectorAll('[data-rows]').forEach(function (rows) {
      observer.observe(rows, { childList: true });
    });
  }

  // A section shows while any of its fields does (form_rules.js hides and shows fields).
  function sections(form) {
    form.querySelectorAll('[data-section]').forEach(function (section) {
      var fields = section.querySelectorAll('.form-grid > [data-field]');
      var shown = Array.prototype.some.call(fields, function (f) { return !f.hidden; });
      if (section.hidden === shown) section.hidden = !shown;
    });
  }

  function watchSections(form) {
    if (typeof MutationObserver === 'undefined') return;
    var observer = new MutationObserver(function () { sections(form); });
    form.querySelectorAll('.form-grid > [data-field]').forEach(function (field) {
      observer.observe(field, { attributes: true, attributeFilter: ['hidden'] });
    });
  }

  function start() {
    setUp(document);
    document.querySelectorAll('form.record-form').forEach(function (form) {
      watchRows(form);
      watchSections(form);
      sections(form);
      openTabWithErrors(form);
    });
  }

  document.addEventListener('click', onClick);
  document.addEventListener('input', onPickerInput);
  document.addEventListener('keydown', onPickerKey);
  document.addEventListener('focusout', onPickerLeave);
  // Capturing, so datetimes are ISO before form_rules.js and htmx read them.
  document.addEventListener('change', onChange, true);
  document.addEventListener('htmx:load', function (event) { setUp(event.target); });
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
