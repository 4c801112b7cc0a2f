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
