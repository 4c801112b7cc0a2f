// List views: rows open with Enter, inline edit saves with Enter and cancels with Escape.
(function () {
  "use strict";

  function clickIn(row, selector) {
    var button = row.querySelector(selector);
    if (!button) return;
    // htmx wires swapped-in elements only when they settle (~20 ms after the swap); a key
    // pressed before that would click a button that does nothing yet.
    if (window.htmx) window.htmx.process(button);
    button.click();
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var editing = target.closest && target.closest("tr[data-inline-edit]");
    if (editing) {
      if (event.key === "Enter" && target.tagName === "INPUT") {
        event.preventDefault();
        clickIn(editing, "[data-inline-save]");
      } else if (event.key === "Escape") {
        event.preventDefault();
        clickIn(editing, "[data-inline-cancel]");
      }
      return;
    }
    if (target.matches && target.matches("tr[data-href]")) {
      if (event.key === "Enter") {
        event.preventDefault();
        window.location.assign(target.getAttribute("data-href"));
      } else if (event.key === "e") {
        event.preventDefault();
        clickIn(target, "[data-inline-open]");
      } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        var next = event.key === "ArrowDown" ? target.nextElementSibling : target.previousElementSibling;
        if (next) {
          event.preventDefault();
          next.focus();
        }
      }
    }
  });

  // Focus the first field of a row that just turned into an editor; refocus a row after cancel.
  // On settle, once htmx has wired the new row's buttons.
  document.addEventListener("htmx:afterSettle", function (event) {
    var el = event.detail.target;
    if (!el || !el.querySelector) return;
    var row = document.getElementById(el.id);
    if (!row) return;
    var first = row.querySelector("[data-inline-first]");
    if (first) {
      first.focus();
      first.select();
    } else if (row.matches("tr[data-href]")) {
      row.focus();
    }
  });
})();

// ---- One list state: the URL. A list request sends only the parameters that say something
// (an "any" filter or the default page size adds nothing to the address bar).
(function () {
  "use strict";

  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.verb !== "get") return;
    var elt = event.detail.elt;
    if (!elt.closest || !(elt.closest("#list-filters") || elt.closest("#list-table") ||
        elt.getAttribute("form") === "list-filters")) return;
    var params = event.detail.parameters;
    var empty = [];
    var names = typeof params.keys === "function" ? Array.from(params.keys()) : Object.keys(params);
    names.forEach(function (name) {
      var value = typeof params.get === "function" ? params.get(name) : params[name];
      if (value === "" || value === null || (name === "limit" && value === "50")) empty.push(name);
    });
    empty.forEach(function (name) {
      if (typeof params.delete === "function") params.delete(name);
      else delete params[name];
    });
  });

  // Back and forward restore the table from htmx's snapshot; the search box and filters
  // show what the restored address says, not what was last typed.
  function syncControls() {
    var form = document.getElementById("list-filters");
    if (!form) return;
    var params = new URLSearchParams(window.location.search);
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.type === "hidden" || field.type === "submit") return;
      if (field.getAttribute("form") === "list-filters" && !form.contains(field)) return;
      field.value = params.get(field.name) || "";
    });
  }
  document.addEventListener("htmx:historyRestore", syncControls);
  window.addEventListener("pageshow", syncControls);

  // ---- Selection bar: header checkbox, shift-click ranges, "3 selected · select all
  // matching · clear"; the actions wait until something is selected.
  var lastClicked = null;

  function boxes() {
    return Array.prototype.slice.call(
      document.querySelectorAll('#list-table tbody input[type=checkbox][name=ids]'));
  }

  function refresh() {
    var form = document.querySelector("[data-bulk-form]");
    if (!form) return;
    var all = boxes();
    var picked = all.filter(function (box) { return box.checked; }).length;
    var scopeAll = form.querySelector("[data-scope-all]");
    var everything = scopeAll && !scopeAll.disabled;
    var count = form.querySelector("[data-selection-count]");
    var matching = form.querySelector("[data-select-matching-wrap]");
    var clear = form.querySelector("[data-clear-wrap]");
    var pageBox = document.querySelector("[data-select-page]");
    if (everything) {
      count.textContent = form.querySelector("[data-select-matching]").textContent.replace(/^Select all/, "All") + " selected";
    } else {
      count.textContent = picked + " selected";
    }
    matching.hidden = everything || picked === 0 || picked < all.length;
    clear.hidden = !everything && picked === 0;
    if (pageBox) {
      pageBox.checked = all.length > 0 && picked === all.length;
      pageBox.indeterminate = picked > 0 && picked < all.length;
    }
    form.querySelectorAll("[data-bulk-control]").forEach(function (control) {
      control.disabled = !everything && picked === 0;
    });
  }

  function setAll(checked) {
    boxes().forEach(function (box) { box.checked = checked; });
  }

  function scopeAll(on) {
    var input = document.querySelector("[data-scope-all]");
    if (input) input.disabled = !on;
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!target.closest) return;
    if (target.matches("[data-select-page]")) {
      setAll(target.checked);
      if (!target.checked) scopeAll(false);
      refresh();
      return;
    }
    if (target.matches("#list-table tbody input[type=checkbox][name=ids]")) {
      var all = boxes();
      if (event.shiftKey && lastClicked && all.indexOf(lastClicked) >= 0) {
        var from = all.indexOf(lastClicked);
        var to = all.indexOf(target);
        var lo = Math.min(from, to);
        var hi = Math.max(from, to);
        for (var i = lo; i <= hi; i++) all[i].checked = target.checked;
      }
      lastClicked = target;
      if (!target.checked) scopeAll(false);
      refresh();
      return;
    }
    if (target.closest("[data-select-matching]")) {
      setAll(true);
      scopeAll(true);
      refresh();
      return;
    }
    if (target.closest("[data-clear-selection]")) {
      setAll(false);
      scopeAll(false);
      lastClicked = null;
      refresh();
    }
  });

  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
  document.addEventListener("htmx:historyRestore", refresh);
})();

// ---- Row menus and phone cards.
(function () {
  "use strict";

  // One row menu open at a time; a click elsewhere or Escape closes it.
  document.addEventListener("click", function (event) {
    var inside = event.target.closest && event.target.closest("details.row-menu");
    document.querySelectorAll("details.row-menu[open]").forEach(function (menu) {
      if (menu !== inside) menu.open = false;
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var menu = event.target.closest && event.target.closest("details.row-menu[open]");
    if (!menu) return;
    menu.open = false;
    menu.querySelector("summary").focus();
  });

  // Below 640 px a row is a card: each cell shows its column's name beside it, taken from
  // the header here rather than repeated in every cell of every page the server sends.
  function label() {
    var table = document.querySelector("table[data-list]");
    if (!table) return;
    var names = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      var copy = th.cloneNode(true);
      copy.querySelectorAll("[data-sort-mark]").forEach(function (mark) { mark.remove(); });
      return copy.textContent.replace(/[▲▼]/g, "").trim();
    });
    table.querySelectorAll("tbody tr").forEach(function (row) {
      Array.prototype.forEach.call(row.children, function (cell, i) {
        if (names[i] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", names[i]);
      });
    });
  }
  document.addEventListener("DOMContentLoaded", label);
  document.addEventListener("htmx:afterSettle", label);
  document.addEventListener("htmx:historyRestore", label);
})();

// ---- On a phone the filters fold into a drawer behind a "Filters" button.
(function () {
  "use strict";
  function fold() {
    var form = document.getElementById("list-filters");
    var toggle = form && form.querySelector("[data-filters-toggle]");
    if (!toggle || form.hasAttribute("data-drawer")) return;
    form.setAttribute("data-drawer", "");
    form.classList.add("drawer-closed");
  }
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-filters-toggle]");
    if (!toggle) return;
    var form = toggle.form;
    var closed = form.classList.toggle("drawer-closed");
    toggle.setAttribute("aria-expanded", closed ? "false" : "true");
  });
  document.addEventListener("DOMContentLoaded", fold);
  document.addEventListener("htmx:load", fold);
})();

// ---- A batched bulk action: Stop waits for the batch under way, then reports what was done.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var stop = event.target.closest && event.target.closest("[data-bulk-stop]");
    if (!stop) return;
    var run = stop.closest("[data-bulk-run]");
    if (!run) return;
    event.preventDefault();
    run.setAttribute("data-stopping", "");
    stop.disabled = true;
    stop.textContent = "Stopping after this batch…";
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("[data-bulk-next]")) return;
    var run = form.closest("[data-bulk-run]");
    if (!run || !run.hasAttribute("data-stopping")) return;
    event.preventDefault();
    form.querySelector("[data-bulk-stop-flag]").value = "1";
    form.submit();
  });
})();

// ---- The filter builder: a column's kind decides its conditions and its value's input;
// a note says when no index serves the filter on a big table.
(function () {
  "use strict";
  function fit(form) {
    var column = form.querySelector("[data-filter-column]");
    var op = form.querySelector("[data-filter-op]");
    var value = form.querySelector("[data-filter-value]");
    var note = form.querySelector("[data-filter-cost]");
    var chosen = column.options[column.selectedIndex];
    if (!chosen) return;
    var ops = (chosen.getAttribute("data-ops") || "").split(" ");
    var cheap = (chosen.getAttribute("data-cheap") || "").split(" ");
    Array.prototype.forEach.call(op.options, function (option) {
      option.hidden = ops.indexOf(option.value) < 0;
      option.disabled = option.hidden;
    });
    if (ops.indexOf(op.value) < 0) op.value = ops[0];
    var input = chosen.getAttribute("data-input");
    value.type = op.value === "in" ? "text" : input;
    value.hidden = op.value === "empty";
    value.required = op.value !== "empty";
    value.placeholder = op.value === "in" ? "a, b, c" : "";
    if (form.getAttribute("data-big-table") === "yes") {
      note.textContent = cheap.indexOf(op.value) >= 0
        ? "An index serves this filter: it stays fast."
        : "No index serves this filter: it reads all " + form.getAttribute("data-rows") + " rows.";
    } else {
      note.textContent = "";
    }
  }
  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("#filter-builder");
    if (form && event.target.name !== "add_val") fit(form);
  });
  document.addEventListener("htmx:load", function (event) {
    var form = event.detail.elt.querySelector && event.detail.elt.querySelector("#filter-builder");
    if (form) fit(form);
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("#filter-builder") || !event.detail.successful) return;
    form.querySelector("[data-filter-value]").value = "";
  });
})();

// ---- Saving a view saves what the address bar says now (the list's whole state). In the
// capture phase: htmx reads a boosted form's fields on its own submit listener.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("[data-save-view]")) return;
    form.querySelector("[data-view-query]").value = window.location.search.replace(/^\?/, "");
  }, true);
})();

// ---- The search box sends itself (as typed, and on Enter). Leaving it also fires a change
// on the filter form, which would ask for the same list again, and its answer would wipe the
// rows ticked meanwhile (Escape, then j and x, is quicker than that request).
(function () {
  "use strict";
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    var cause = event.detail.triggeringEvent;
    if (!elt.matches || !elt.matches("#list-filters") || !cause || !cause.target) return;
    if (cause.type === "change" && cause.target.matches && cause.target.matches("[data-search]")) {
      event.preventDefault();
    }
  });
})();

// ---- The list answers the last thing asked: a request for the table drops the one still
// under way (leaving a search box by clicking a control fires its change, then the control).
(function () {
  "use strict";
  var pending = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "list-table") return;
    if (pending && pending !== event.detail.xhr) pending.abort();
    pending = event.detail.xhr;
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.xhr === pending) pending = null;
  });
})();
