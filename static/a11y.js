// Keyboard and screen readers on every page: focus after swaps, a polite live region, error
// summaries that lead to their fields, and single-key shortcuts (? lists them).
(function () {
  "use strict";

  // ---- the live region: one per page, in base.html
  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region || !text) return;
    // emptied first, so the same words twice are still read twice
    region.textContent = "";
    window.setTimeout(function () { region.textContent = text; }, 60);
  }
  window.adminAnnounce = announce;

  function focusElement(el) {
    if (!el) return false;
    if (!el.hasAttribute("tabindex") && !/^(A|BUTTON|INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus({ preventScroll: false });
    return document.activeElement === el;
  }

  function focusLost() {
    var active = document.activeElement;
    return !active || active === document.body || !document.contains(active);
  }

  function flashText(root) {
    var parts = [];
    (root || document).querySelectorAll("#flashes .flash").forEach(function (p) {
      parts.push(p.textContent.trim());
    });
    return parts.join(" ");
  }

  // ---- invalid fields: aria-invalid and the mark follow the error slot, also when a field's
  // check (on leaving it) swaps in a new message
  function syncInvalid(root) {
    (root || document).querySelectorAll(".field").forEach(function (field) {
      var slot = field.querySelector(".field-error");
      if (!slot) return;
      var bad = slot.textContent.trim() !== "";
      field.classList.toggle("invalid", bad);
      field.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(function (input) {
        if (input.type === "search") return;
        if (bad) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      });
    });
  }

  // ---- times on record pages: how long ago, the exact time (zone named) on hover and for
  // screen readers
  var UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
    ["hour", 3600], ["minute", 60], ["second", 1]];

  function ago(when) {
    var seconds = (when - Date.now()) / 1000;
    var format = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1] || UNITS[i][0] === "second") {
        return format.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return "";
  }

  function relativeTimes(root) {
    if (!window.Intl || !Intl.RelativeTimeFormat) return;
    root.querySelectorAll("[data-relative-times] time[datetime]").forEach(function (el) {
      var iso = el.getAttribute("datetime");
      if (el.hasAttribute("data-exact") || iso.length <= 10) return;  // a date alone stays
      var when = Date.parse(iso);
      if (isNaN(when)) return;
      var exact = el.textContent.trim();
      el.setAttribute("data-exact", exact);
      el.setAttribute("title", exact);
      el.textContent = ago(when);
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = " (" + exact + ")";
      el.appendChild(hidden);
    });
  }

  // ---- after a page load or a swap
  function settle(target, boosted) {
    var first = target.querySelector("[data-focus-first]") ||
      (target.matches && target.matches("[data-focus-first]") ? target : null);
    if (first) {
      focusElement(first);
      announce(first.getAttribute("data-announce") || "");
      return;
    }
    if (boosted) {
      var heading = document.querySelector("main h1");
      focusElement(heading);
      announce(flashText() || (heading ? heading.textContent.trim() : document.title));
      return;
    }
    var result = target.querySelector("[data-announce]");
    var summary = result ? result.getAttribute("data-announce") : "";
    if (!summary) {
      var total = target.querySelector(".list-total");
      if (total) summary = total.textContent.replace(/\s+/g, " ").replace("· exact count", "").trim();
    }
    if (summary) announce(summary);
    if (focusLost()) {
      focusElement(target.querySelector("h1, h2, caption, .list-total") || target);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    syncInvalid(document);
    relativeTimes(document);
    var first = document.querySelector("[data-focus-first]");
    if (first) {
      focusElement(first);
      return;
    }
    var said = flashText();
    if (said) {
      // the page an action led to (a save redirects here): start at its heading, and read the
      // message out (a live region only speaks of changes, not of what a page loads with)
      focusElement(document.querySelector("main h1"));
      announce(said);
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var detail = event.detail || {};
    var target = detail.target;
    if (!target || !document.contains(target)) target = detail.elt;
    if (!target || !target.querySelector) return;
    if (!document.contains(target)) {
      // the swap removed what it targeted (a deleted row): focus what holds it now
      target = document.getElementById("list-table") || document.querySelector("main") || document.body;
    }
    syncInvalid(document);
    relativeTimes(document);
    // what the reader asked for moves focus; what a live stream pushes in never does
    if (!detail.xhr && !detail.requestConfig) return;
    var boosted = !!(detail.boosted || (detail.requestConfig && detail.requestConfig.boosted)) ||
      target === document.body;
    if (target.classList && target.classList.contains("field-error")) return;
    if (detail.elt && detail.elt.classList && detail.elt.classList.contains("field-error")) return;
    settle(target, boosted);
  });

  // Back and Forward restore a page from htmx's history: the reader is told where they are
  document.addEventListener("admin:content-replaced", function () {
    relativeTimes(document);
  });

  document.addEventListener("htmx:historyRestore", function () {
    syncInvalid(document);
    relativeTimes(document);
    var heading = document.querySelector("main h1");
    focusElement(heading);
    announce(heading ? heading.textContent.trim() : document.title);
  });

  // a server-side confirmation (HX-Trigger: {"announce": "..."}): read out, shown on the row
  document.addEventListener("announce", function (event) {
    var detail = event.detail || {};
    announce(detail.value || detail.message || "");
    // the event comes before the swap, and a swap that removes its target (a deleted row)
    // sends no event to the document: once it is done, mark the new row, keep focus in place
    window.setTimeout(function () {
      var row = detail.row ? document.getElementById(detail.row) : null;
      if (row) {
        row.classList.add("just-saved");
        window.setTimeout(function () { row.classList.remove("just-saved"); }, 2500);
      }
      if (!focusLost()) return;
      var list = document.getElementById("list-table");
      focusElement(row || (list ? list.querySelector(".list-total") || list : document.querySelector("main h1")));
    }, 100);
  });

  // ---- an error summary's links focus their field (also when the page is boosted)
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-field-link]");
    if (!link) return;
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    field.scrollIntoView({ block: "center" });
    field.focus();
  });

  // ---- single-key shortcuts
  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  // the first link in the page's content whose path ends so (its query, such as the list
  // it returns to, may follow)
  function linkEndingIn(suffix) {
    var links = document.querySelectorAll("main a[href]");
    for (var i = 0; i < links.length; i++) {
      if (links[i].pathname.slice(-suffix.length) === suffix) return links[i];
    }
    return null;
  }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("tr[data-href]"));
  }

  function moveRow(step) {
    var all = rows();
    if (!all.length) return;
    var current = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("tr[data-href]") : null;
    var index = current ? all.indexOf(current) + step : (step > 0 ? 0 : all.length - 1);
    index = Math.max(0, Math.min(all.length - 1, index));
    focusElement(all[index]);
  }

  // "g" then a letter: each nav link gets the first letter of its name not taken before it
  function jumps() {
    var taken = {};
    var list = [];
    document.querySelectorAll(".nav a[href]").forEach(function (link) {
      var name = link.firstChild ? link.firstChild.textContent.trim() : link.textContent.trim();
      var letters = name.toLowerCase().replace(/[^a-z]/g, "");
      for (var i = 0; i < letters.length; i++) {
        var letter = letters[i];
        if (!taken[letter] && letter !== "g") {
          taken[letter] = link;
          list.push({ letter: letter, name: name, link: link });
          return;
        }
      }
    });
    return list;
  }

  function openHelp() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog || dialog.open) return;
    var list = dialog.querySelector("[data-jump-list]");
    if (list) {
      list.textContent = "";
      jumps().forEach(function (jump) {
        var item = document.createElement("li");
        var keys = document.createElement("kbd");
        keys.textContent = "g " + jump.letter;
        item.appendChild(keys);
        item.appendChild(document.createTextNode(" " + jump.name));
        list.appendChild(item);
      });
    }
    dialog.showModal();
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-shortcuts-open]")) openHelp();
    if (event.target.closest && event.target.closest("[data-shortcuts-close]")) {
      document.getElementById("shortcuts").close();
    }
  });

  var pendingG = 0;
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (typing(event.target)) return;
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;
    var key = event.key;
    if (pendingG && Date.now() - pendingG < 1500) {
      pendingG = 0;
      var jump = jumps().filter(function (j) { return j.letter === key.toLowerCase(); })[0];
      if (jump) {
        event.preventDefault();
        jump.link.click();
      }
      return;
    }
    pendingG = 0;
    var row = event.target.closest ? event.target.closest("tr[data-href]") : null;
    if (key === "?") {
      event.preventDefault();
      openHelp();
    } else if (key === "g") {
      pendingG = Date.now();
    } else if (key === "j" || key === "k") {
      event.preventDefault();
      moveRow(key === "j" ? 1 : -1);
    } else if (key === "x" && row) {
      var box = row.querySelector("input[type=checkbox]");
      if (box) {
        event.preventDefault();
        box.click();
      }
    } else if (key === "n") {
      var create = linkEndingIn("/new");
      if (create) {
        event.preventDefault();
        create.click();
      }
    } else if (key === "e" && !row && !rows().length) {
      var edit = linkEndingIn("/edit");
      if (edit) {
        event.preventDefault();
        edit.click();
      }
    }
  });
})();
