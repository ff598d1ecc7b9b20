/*
 * form_rules.js — a form's conditional logic in the browser (plain ES2017, no build step).
 *
 * Reads the manifest written by form_engine/manifest.py from
 * <script type="application/json" id="form-rules"> inside (or next to) a <form>, and on
 * every input/change re-evaluates the rules with the global `jsonLogic`
 * (app/static/vendor/json-logic-js/logic.js):
 *   - hides/shows each field's wrapper [data-field="name"] and disables its inputs
 *     (so hidden fields are not submitted);
 *   - toggles `required` (and the class `is-required` on the wrapper);
 *   - makes fields read-only (text inputs: readOnly; selects, checkboxes, files:
 *     disabled), putting the stored value back, as the server keeps it;
 *   - shows computed values (formulas, child-table rollups, line formulas per row)
 *     in their <output id="..."> elements;
 *   - writes failing validation messages into [data-field="name"] [data-rule-errors].
 *
 * The evaluation mirrors form_engine/rules.py step by step: inputs are parsed as
 * form_engine/values.py parses them (numbers as numbers, blanks as null, dates
 * as YYYY-MM-DD, datetimes as UTC "YYYY-MM-DDTHH:MM:SSZ"), the would-be record is
 * the stored one overlaid with the inputs the rules accept, and the states are
 * iterated to the same fixpoint. The server is the authority; this only spares
 * a round trip.
 *
 * Child tables: rows live in [data-rows="lines"], each row in [data-row], inputs named
 * lines-0-product. Buttons [data-add-row="lines"] (cloning
 * <template data-row-template="lines"> whose names use __index__),
 * [data-remove-row] and [data-move-row="up"|"down"] inside a row; rows are
 * renumbered after every change, so the server reads them in page order.
 * A type-ahead picker may put the picked record's JSON on its input as
 * data-record, so rules and lookups that follow the reference see it at once.
 */
(function (root) {
  'use strict';

  var NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
  var DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
  var DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?$/;
  var ID = /^\d{1,18}$/;
  // Fields for which a browser sends nothing when they are empty (see submission.py).
  var ABSENT_IS_EMPTY = { boolean: true, multiselect: true, ids: true, rows: true };

  function logic() {
    return root.jsonLogic;
  }

  function clone(value) {
    return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
  }

  function isBlank(value) {
    return value === null || value === undefined ||
      (typeof value === 'string' && value.trim() === '') ||
      (Array.isArray(value) && value.length === 0);
  }

  // --- parsing input text, as form_engine/values.py rule_value does ------------------

  function firstText(raw) {
    var text = raw.length && typeof raw[0] === 'string' ? raw[0] : null;
    return text === null || text.trim() === '' ? null : text;
  }

  function parseNumber(text) {
    text = text ? text.trim() : '';
    if (!NUMBER.test(text)) return null;
    var number = Number(text);
    return isFinite(number) && Math.abs(number) < 1e300 ? number : null;
  }

  function pad(number, width) {
    var text = String(number);
    while (text.length < width) text = '0' + text;
    return text;
  }

  function validDate(y, m, d) {
    var date = new Date(Date.UTC(y, m - 1, d));
    date.setUTCFullYear(y);
    return y >= 1 && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
  }

  function parseDate(text) {
    var match = text ? DATE.exec(text.trim()) : null;
    if (!match) return null;
    var y = +match[1], m = +match[2], d = +match[3];
    return validDate(y, m, d) ? match[1] + '-' + match[2] + '-' + match[3] : null;
  }

  function zoneOffset(utcMs, zone) {
    var format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit'
    });
    var parts = {};
    format.formatToParts(new Date(utcMs)).forEach(function (p) { parts[p.type] = p.value; });
    var wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24,
      +parts.minute, +parts.second);
    return wall - Math.floor(utcMs / 1000) * 1000;
  }

  function utcText(ms) {
    var date = new Date(ms);
    return pad(date.getUTCFullYear(), 4) + '-' + pad(date.getUTCMonth() + 1, 2) + '-' +
      pad(date.getUTCDate(), 2) + 'T' + pad(date.getUTCHours(), 2) + ':' +
      pad(date.getUTCMinutes(), 2) + ':' + pad(date.getUTCSeconds(), 2) + 'Z';
  }

  // A datetime-local value (wall time in the form's zone) as UTC text.
  function parseLocalDateTime(text, zone) {
    var match = text ? DATETIME.exec(text.trim()) : null;
    if (!match) return null;
    var y = +match[1], mo = +match[2], d = +match[3], h = +match[4], mi = +match[5];
    var s = match[6] ? +match[6] : 0;
    if (!validDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return null;
    var wall = Date.UTC(y, mo - 1, d, h, mi, s);
    var date = new Date(wall);
    date.setUTCFullYear(y);
    wall = date.getTime();
    if (!zone || zone === 'UTC') return utcText(wall);
    return utcText(wallToUtc(wall, zone));
  }

  // Like Python's zoneinfo (fold=0): a repeated hour is read as its first occurrence, a
  // skipped hour with the offset from before the change.
  function wallToUtc(wall, zone) {
    var HALF_DAY = 12 * 3600 * 1000;
    var before = zoneOffset(wall - HALF_DAY, zone);
    var after = zoneOffset(wall + HALF_DAY, zone);
    var fits = [wall - before, wall - after].filter(function (t, i) {
      return zoneOffset(t, zone) === (i === 0 ? before : after);
    });
    return fits.length ? Math.min.apply(null, fits) : wall - before;
  }

  function unique(values) {
    var seen = [];
    values.forEach(function (v) { if (seen.indexOf(v) < 0) seen.push(v); });
    return seen;
  }

  function ruleValue(info, raw, manifest) {
    var text;
    switch (info.kind) {
      case 'text':
        return firstText(raw);
      case 'trimmed':
        text = firstText(raw);
        return text === null ? null : text.trim();
      case 'integer':
        text = parseNumber(firstText(raw));
        return text !== null && Number.isInteger(text) ? text : null;
      case 'decimal':
        return parseNumber(firstText(raw));
      case 'boolean':
        text = firstText(raw);
        return text !== null && manifest.true_words.indexOf(text.trim().toLowerCase()) >= 0;
      case 'date':
        return parseDate(firstText(raw));
      case 'datetime':
        return parseLocalDateTime(firstText(raw), manifest.timezone);
      case 'select':
        text = firstText(raw);
        return text !== null && info.options.indexOf(text) >= 0 ? text : null;
      case 'multiselect':
        return unique(raw.filter(function (v) { return info.options.indexOf(v) >= 0; }));
      case 'id':
        text = (firstText(raw) || '').trim();
        return ID.test(text) && Number(text) > 0 ? Number(text) : null;
      case 'ids':
        return unique(raw.map(function (v) { return String(v).trim(); })
          .filter(function (v) { return ID.test(v) && Number(v) > 0; }).map(Number));
      default:
        return null;
    }
  }

  // --- computed fields, as form_engine/rules.py computed() ----------------------------

  function truthy(value) {
    return logic().truthy(value);
  }

  function holds(rule, data, fallback) {
    try {
      return truthy(logic().apply(rule, data));
    } catch (error) {
      return fallback;
    }
  }

  function roundHalfUp(number, scale) {
    var factor = Math.pow(10, scale);
    var sign = number < 0 ? -1 : 1;
    return sign * Math.round(Math.abs(number) * factor) / factor;
  }

  // A computed result as the field holds it (records.computed.fit, for numbers).
  function fit(result, info) {
    if (result === null || result === undefined) return null;
    var kind = info.result || info.kind;
    if (kind === 'decimal' || kind === 'integer') {
      if (typeof result === 'boolean') return null;
      var number = typeof result === 'number' ? result : parseNumber(String(result));
      if (number === null || !isFinite(number)) return null;
      return roundHalfUp(number, kind === 'integer' ? 0 : (info.scale || 0));
    }
    if (kind === 'boolean') return truthy(result);
    if ((kind === 'text' || kind === 'trimmed') && typeof result !== 'string') {
      return String(result);
    }
    return result;
  }

  function formula(entry, info, data, context) {
    try {
      return fit(logic().apply(entry.expression, Object.assign({}, data, context)), info);
    } catch (error) {
      return null;
    }
  }

  function withFormulas(child, row, context) {
    row = Object.assign({}, row);
    child.formulas.forEach(function (f) {
      row[f.field] = formula(f, child.fields[f.field], row, context);
    });
    return row;
  }

  function aggregate(entry, info, rows) {
    if (entry.filter) {
      rows = rows.filter(function (row) { return holds(entry.filter, row, false); });
    }
    if (entry.aggregate === 'count') return rows.length;
    var present = rows.map(function (row) { return row[entry.source]; })
      .filter(function (v) { return v !== null && v !== undefined; });
    var numeric = present.every(function (v) { return typeof v === 'number'; });
    if ((entry.aggregate === 'min' || entry.aggregate === 'max') && present.length && !numeric) {
      var sorted = present.slice().sort();
      return entry.aggregate === 'min' ? sorted[0] : sorted[sorted.length - 1];
    }
    var numbers = present.map(function (v) {
      return typeof v === 'boolean' ? Number(v) : typeof v === 'number' ? v : parseNumber(String(v));
    }).filter(function (v) { return v !== null; });
    var total = numbers.reduce(function (a, b) { return a + b; }, 0);
    if (entry.aggregate === 'sum') return fit(total, info);
    if (!numbers.length) return null;
    if (entry.aggregate === 'avg') return fit(total / numbers.length, info);
    return fit(Math[entry.aggregate].apply(null, numbers), info);
  }

  function referenced(manifest, path, id, picked) {
    if (id === null || id === undefined) return null;
    if (typeof id === 'object') return id;
    if (picked && picked[path] && String(picked[path].id) === String(id)) {
      return clone(picked[path]);
    }
    var known = manifest.referenced[path];
    return known && known[String(id)] ? clone(known[String(id)]) : null;
  }

  function follow(manifest, values, picked) {
    var data = Object.assign({}, values);
    manifest.references.forEach(function (path) {
      var segments = path.split('.');
      var last = segments.pop();
      var holder = data;
      segments.forEach(function (s) {
        holder = holder && typeof holder === 'object' ? holder[s] : null;
      });
      if (!holder || typeof holder !== 'object') return;
      holder[last] = referenced(manifest, path, holder[last], picked);
    });
    return data;
  }

  function computed(manifest, record, picked) {
    var values = Object.assign({}, record);
    var base = manifest.base;
    var context = manifest.context;
    Object.keys(manifest.children).forEach(function (name) {
      values[name] = (values[name] || []).map(function (row) {
        return withFormulas(manifest.children[name], row, context);
      });
    });
    manifest.lookups.forEach(function (entry) {
      var id = values[entry.via];
      if (id === base[entry.via] && entry.field in base) {
        values[entry.field] = base[entry.field];
      } else {
        var found = referenced(manifest, entry.via, id, picked);
        values[entry.field] = found && entry.source in found ? found[entry.source] : null;
      }
    });
    manifest.rollups.forEach(function (entry) {
      values[entry.field] = entry.live
        ? aggregate(entry, manifest.fields[entry.field], values[entry.via] || [])
        : (entry.field in base ? base[entry.field] : null);
    });
    var data = follow(manifest, values, picked);
    manifest.formulas.forEach(function (f) {
      values[f.field] = data[f.field] = formula(f, manifest.fields[f.field], data, context);
    });
    return { record: values, data: Object.assign(data, context) };
  }

  // --- states, as form_engine/rules.py evaluate_form() --------------------------------

  function itemState(item, data, held) {
    var visible = item.visible_when === undefined ? true : holds(item.visible_when, data, true);
    if (item.display_only) return { visible: visible, required: false, read_only: true };
    var readOnly = held.indexOf(item.field) >= 0 ||
      (item.read_only_when !== undefined && holds(item.read_only_when, data, true));
    var required = item.required ||
      (item.required_when !== undefined && holds(item.required_when, data, false));
    return { visible: visible, required: required, read_only: readOnly };
  }

  function sameSet(a, b) {
    return a.length === b.length && a.every(function (x) { return b.indexOf(x) >= 0; });
  }

  function difference(a, b) {
    return a.filter(function (x) { return b.indexOf(x) < 0; });
  }

  /*
   * inputs: {name: [strings]} as the form would submit them now (enabled inputs only;
   * row cells as lines-0-product). picked: {reference path: record} from pickers.
   * Inputs whose acceptance keeps flipping are held read-only and the rest settled again.
   */
  function evaluate(manifest, inputs, picked) {
    var submitted = readSubmitted(manifest, inputs);
    var held = manifest.items.filter(function (i) { return i.locked; })
      .map(function (i) { return i.field; });
    for (;;) {
      var result = settle(manifest, submitted, picked || {}, held);
      if (!result.flipping.length) return result.outcome;
      held = held.concat(result.flipping);
    }
  }

  function settle(manifest, submitted, picked, held) {
    var inputsList = difference(manifest.inputs, held);
    function round(accepted) {
      var record = clone(manifest.base);
      accepted.forEach(function (n) { if (n in submitted) record[n] = submitted[n]; });
      var out = computed(manifest, record, picked);
      var states = {};
      manifest.items.forEach(function (item) {
        states[item.field] = itemState(item, out.data, held);
      });
      return { states: states, record: out.record, data: out.data, accepted: accepted };
    }
    var accepted = inputsList.slice();
    var history = [accepted];
    var cycle = history;
    var outcome = null;
    for (var i = 0; i < manifest.max_rounds; i++) {
      outcome = round(accepted);
      var settled = inputsList.filter(function (n) {
        return outcome.states[n].visible && !outcome.states[n].read_only;
      });
      if (sameSet(settled, accepted)) return { outcome: outcome, flipping: [] };
      var seen = history.findIndex(function (h) { return sameSet(h, settled); });
      if (seen >= 0) {
        // Back at an earlier set: what differs within the cycle keeps flipping.
        cycle = history.slice(seen);
        break;
      }
      history.push(settled);
      accepted = settled;
    }
    var flipping = [];
    cycle.forEach(function (state) {
      flipping = unique(flipping.concat(difference(state, cycle[0]), difference(cycle[0], state)));
    });
    return { outcome: outcome, flipping: flipping };
  }

  function readSubmitted(manifest, inputs) {
    var submitted = {};
    manifest.inputs.forEach(function (name) {
      var info = manifest.fields[name];
      if (info.kind === 'stored') return;
      if (info.kind === 'rows') {
        submitted[name] = readRows(manifest, name, inputs);
        return;
      }
      var raw = inputs[name] || [];
      if (!raw.length && !ABSENT_IS_EMPTY[info.kind]) return;
      submitted[name] = ruleValue(info, raw, manifest);
    });
    return submitted;
  }

  function readRows(manifest, table, inputs) {
    var child = manifest.children[table];
    var pattern = new RegExp('^' + table + '-(\\d+)-');
    var indices = unique(Object.keys(inputs).map(function (key) {
      var match = pattern.exec(key);
      return match ? Number(match[1]) : null;
    }).filter(function (i) { return i !== null; })).sort(function (a, b) { return a - b; });
    var stored = {};
    (manifest.base[table] || []).forEach(function (row) { if (row.id) stored[row.id] = row; });
    return indices.map(function (index) {
      var prefix = table + '-' + index + '-';
      var idText = (firstText(inputs[prefix + 'id'] || []) || '').trim();
      var id = ID.test(idText) && Number(idText) > 0 ? Number(idText) : null;
      var row = id !== null && stored[id] ? clone(stored[id]) : {};
      row.id = id !== null && stored[id] ? id : null;
      child.inputs.forEach(function (name) {
        var info = child.fields[name];
        if (info.kind === 'stored') return;
        var raw = inputs[prefix + name] || [];
        if (raw.length || ABSENT_IS_EMPTY[info.kind]) row[name] = ruleValue(info, raw, manifest);
      });
      return row;
    });
  }

  function failedValidations(manifest, data) {
    return manifest.validations.filter(function (v) { return !holds(v.rule, data, false); });
  }

  // --- the page ------------------------------------------------------------------------

  function cssName(name) {
    return root.CSS && root.CSS.escape ? root.CSS.escape(name) : name.replace(/"/g, '\\"');
  }

  function controls(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      return el.name && !el.disabled && el.tagName !== 'BUTTON' && el.tagName !== 'FIELDSET';
    });
  }

  // What the form would submit now, as {name: [strings]}.
  function currentInputs(form) {
    var inputs = {};
    controls(form).forEach(function (el) {
      var list = inputs[el.name] || (inputs[el.name] = []);
      if (el.type === 'checkbox' || el.type === 'radio') {
        if (el.checked) list.push(el.value);
      } else if (el.type === 'select-multiple') {
        Array.prototype.forEach.call(el.options, function (o) { if (o.selected) list.push(o.value); });
      } else if (el.type !== 'file') {
        list.push(el.value);
      }
    });
    Object.keys(inputs).forEach(function (k) {
      if (!inputs[k].length) delete inputs[k];
    });
    return inputs;
  }

  function pickedRecords(form, manifest) {
    var picked = {};
    manifest.references.forEach(function (path) {
      var name = path.split('.')[0];
      var el = form.querySelector('[name="' + cssName(name) + '"][data-record]');
      if (el && path === name) {
        try {
          picked[path] = JSON.parse(el.getAttribute('data-record'));
        } catch (error) {
          picked[path] = null;
        }
      }
    });
    manifest.lookups.forEach(function (entry) {
      var el = form.querySelector('[name="' + cssName(entry.via) + '"][data-record]');
      if (el && !(entry.via in picked)) {
        try {
          picked[entry.via] = JSON.parse(el.getAttribute('data-record'));
        } catch (error) {
          picked[entry.via] = null;
        }
      }
    });
    return picked;
  }

  function wrapper(form, name) {
    return form.querySelector('[data-field="' + cssName(name) + '"]');
  }

  function fieldControls(form, name) {
    var box = wrapper(form, name);
    var scope = box || form;
    var selector = box ? 'input, select, textarea' : '[name="' + cssName(name) + '"]';
    return Array.prototype.slice.call(scope.querySelectorAll(selector));
  }

  function togglesByDisabling(el) {
    return el.tagName === 'SELECT' || el.type === 'checkbox' || el.type === 'radio' ||
      el.type === 'file' || el.type === 'hidden';
  }

  // Put a field's stored value back into its input (text as the server renders it).
  function restore(el, texts) {
    if (!(el.name in texts)) return;
    var values = texts[el.name];
    if (el.type === 'checkbox' || el.type === 'radio') {
      el.checked = values.indexOf(el.value) >= 0;
    } else if (el.type === 'select-multiple') {
      Array.prototype.forEach.call(el.options, function (o) {
        o.selected = values.indexOf(o.value) >= 0;
      });
    } else if (el.type !== 'file' && (el.type !== 'hidden' || values.length <= 1)) {
      el.value = values.length ? values[0] : '';
    }
  }

  // Disable or enable an input for a rule, without touching inputs the page disabled.
  function setDisabled(el, disabled) {
    if (disabled) {
      if (!el.disabled) {
        el.disabled = true;
        el.setAttribute('data-rules-disabled', '');
      }
    } else if (el.hasAttribute('data-rules-disabled')) {
      el.disabled = false;
      el.removeAttribute('data-rules-disabled');
    }
  }

  function applyState(form, manifest, name, state) {
    var box = wrapper(form, name);
    var item = manifest.items.filter(function (i) { return i.field === name; })[0];
    if (box) {
      box.hidden = !state.visible;
      box.classList.toggle('is-required', state.required && state.visible && !state.read_only);
      box.classList.toggle('is-read-only', state.read_only);
    }
    if (item.display_only) return false;
    var changed = false;
    var initial = {};
    initial[name] = manifest.initial[name] || [];
    fieldControls(form, name).forEach(function (el) {
      var wasDisabled = el.disabled;
      var wasReadOnly = el.hasAttribute('data-rules-read-only');
      var readOnly = state.read_only && state.visible;
      if (readOnly && !wasReadOnly) {
        restore(el, initial);
        el.setAttribute('data-rules-read-only', '');
      } else if (!readOnly && wasReadOnly) {
        el.removeAttribute('data-rules-read-only');
      }
      setDisabled(el, !state.visible || (readOnly && togglesByDisabling(el)));
      if (!togglesByDisabling(el)) el.readOnly = readOnly;
      if (el.type !== 'checkbox' && el.type !== 'hidden' && el.type !== 'file') {
        el.required = state.required && state.visible && !state.read_only;
      }
      el.setAttribute('aria-required', String(state.required && state.visible));
      changed = changed || wasDisabled !== el.disabled;
    });
    return changed;
  }

  function format(info, value) {
    if (value === null || value === undefined) return '';
    var kind = info.result || info.kind;
    if (kind === 'decimal' && typeof value === 'number') return value.toFixed(info.scale || 0);
    if (kind === 'datetime' && typeof value === 'string') return value.replace('T', ' ');
    if (Array.isArray(value)) return value.join(', ');
    return String(value);
  }

  function showComputed(form, manifest, record) {
    Object.keys(manifest.fields).forEach(function (name) {
      var info = manifest.fields[name];
      var out = form.querySelector('output#' + cssName(name));
      if (out && info.kind === 'computed') out.textContent = format(info, record[name]);
    });
    Object.keys(manifest.children).forEach(function (table) {
      var child = manifest.children[table];
      (record[table] || []).forEach(function (row, index) {
        child.formulas.forEach(function (f) {
          var out = form.querySelector('output#' + cssName(table + '-' + index + '-' + f.field));
          if (out) out.textContent = format(child.fields[f.field], row[f.field]);
        });
      });
    });
  }

  function showValidations(form, manifest, outcome) {
    var messages = {};
    failedValidations(manifest, outcome.data).forEach(function (v) {
      v.fields.forEach(function (name) {
        if (outcome.states[name] && outcome.states[name].visible) {
          (messages[name] = messages[name] || []).push(v.message);
        }
      });
    });
    manifest.items.forEach(function (item) {
      var box = wrapper(form, item.field);
      var target = box && box.querySelector('[data-rule-errors]');
      if (target) target.textContent = (messages[item.field] || []).join(' ');
    });
  }

  function refresh(form) {
    var manifest = form.formRulesManifest;
    if (!manifest) return null;
    var outcome = null;
    // Applying states enables and disables inputs, which changes what would be
    // submitted; go again until it does not (the server sees the final page).
    for (var pass = 0; pass < manifest.max_rounds; pass++) {
      outcome = evaluate(manifest, currentInputs(form), pickedRecords(form, manifest));
      var changed = false;
      Object.keys(outcome.states).forEach(function (name) {
        changed = applyState(form, manifest, name, outcome.states[name]) || changed;
      });
      if (!changed) break;
    }
    showComputed(form, manifest, outcome.record);
    showValidations(form, manifest, outcome);
    return outcome;
  }

  // --- child rows ---------------------------------------------------------------------

  var ATTRIBUTES = ['name', 'id', 'for', 'data-field'];

  function renumber(container, table) {
    var pattern = new RegExp('^' + table + '-(\\d+|__index__)-');
    var rows = Array.prototype.filter.call(container.children, function (el) {
      return el.hasAttribute('data-row');
    });
    rows.forEach(function (row, index) {
      var elements = [row].concat(Array.prototype.slice.call(row.querySelectorAll('*')));
      elements.forEach(function (el) {
        ATTRIBUTES.forEach(function (attribute) {
          var value = el.getAttribute(attribute);
          if (value && pattern.test(value)) {
            el.setAttribute(attribute, value.replace(pattern, table + '-' + index + '-'));
          }
        });
      });
    });
  }

  function rowsOf(form, table) {
    return form.querySelector('[data-rows="' + cssName(table) + '"]');
  }

  function onClick(event) {
    var form = event.currentTarget;
    var button = event.target.closest('[data-add-row], [data-remove-row], [data-move-row]');
    if (!button || !form.contains(button)) return;
    event.preventDefault();
    var table = button.getAttribute('data-add-row');
    var container;
    if (table) {
      container = rowsOf(form, table);
      var template = form.querySelector('template[data-row-template="' + cssName(table) + '"]');
      if (!container || !template) return;
      container.appendChild(template.content.cloneNode(true));
    } else {
      var row = button.closest('[data-row]');
      container = row && row.parentElement;
      if (!container) return;
      table = container.getAttribute('data-rows');
      var move = button.getAttribute('data-move-row');
      if (button.hasAttribute('data-remove-row')) {
        row.remove();
      } else if (move === 'up' && row.previousElementSibling) {
        container.insertBefore(row, row.previousElementSibling);
      } else if (move === 'down' && row.nextElementSibling) {
        container.insertBefore(row.nextElementSibling, row);
      }
    }
    renumber(container, table);
    refresh(form);
  }

  function init(scope) {
    scope = scope || root.document;
    var scripts = [];
    if (scope.matches && scope.matches('script#form-rules')) scripts.push(scope);
    if (scope.querySelectorAll) {
      scripts = scripts.concat(Array.prototype.slice.call(scope.querySelectorAll('script#form-rules')));
    }
    scripts.forEach(function (script) {
      var form = script.closest('form') ||
        (script.getAttribute('data-form') && root.document.getElementById(script.getAttribute('data-form'))) ||
        root.document.querySelector('form[data-form-rules]');
      if (!form) return;
      form.formRulesManifest = JSON.parse(script.textContent);
      if (!form.formRulesBound) {
        form.formRulesBound = true;
        var scheduled = false;
        var schedule = function () {
          if (scheduled) return;
          scheduled = true;
          root.requestAnimationFrame(function () {
            scheduled = false;
            refresh(form);
          });
        };
        form.addEventListener('input', schedule);
        form.addEventListener('change', schedule);
        form.addEventListener('click', onClick);
      }
      refresh(form);
    });
  }

  var FormRules = {
    evaluate: evaluate,
    ruleValue: ruleValue,
    failedValidations: failedValidations,
    refresh: refresh,
    renumber: renumber,
    init: init
  };

  if (typeof module === 'object' && module.exports) {
    module.exports = FormRules;
  } else {
    root.FormRules = FormRules;
    if (root.document) {
      if (root.document.readyState === 'loading') {
        root.document.addEventListener('DOMContentLoaded', function () { init(root.document); });
      } else {
        init(root.document);
      }
      // Forms that htmx swaps in.
      root.document.addEventListener('htmx:load', function (event) { init(event.target); });
    }
  }
})(typeof window !== 'undefined' ? window : globalThis);
