// Behaviour shared by every page. No inline scripts anywhere: the CSP forbids them.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // A reference field's autocomplete: picking a match fills the field, then focus returns
  // to it (keyboard users land where they were typing).
  document.addEventListener("click", function (event) {
    var pick = event.target.closest && event.target.closest("[data-pick-for]");
    if (!pick) return;
    var field = document.getElementById(pick.getAttribute("data-pick-for"));
    if (!field) return;
    field.value = pick.getAttribute("data-value");
    field.dispatchEvent(new Event("change", { bubbles: true }));
    var list = pick.closest(".lookup-options");
    if (list) list.textContent = "";
    field.focus();
  });

  // htmx sends the CSRF token from the meta tag on every request it makes.
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  // A boosted navigation swaps <body> only; keep the meta tag in step with the new page.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || !xhr.responseText) return;
    var match = xhr.responseText.match(/<meta name="csrf-token" content="([^"]*)"/);
    if (match) {
      var meta = document.querySelector('meta[name="csrf-token"]');
      if (meta) meta.setAttribute("content", match[1]);
    }
  });

  // A field is checked as it loses focus, but not when it loses it to a submit button of
  // its own form: the submit checks every field anyway, and a message appearing above the
  // button while it is being pressed moves the button away from the pointer (the click is
  // lost, and the form is not sent).
  document.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail.triggeringEvent;
    if (!trigger || (trigger.type !== "blur" && trigger.type !== "focusout")) return;
    var next = trigger.relatedTarget;
    var field = event.detail.elt;
    if (next && next.type === "submit" && next.form && field.form === next.form) {
      event.preventDefault();
    }
  });

  // Render 4xx fragments (validation errors, conflicts) instead of dropping them.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var status = xhr.status;
    if (status === 409 || status === 422 || status === 400 || status === 401 || status === 429) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (status >= 400 && (event.detail.boosted ||
               xhr.getResponseHeader("HX-Retarget") === "#flashes")) {
      // any other refusal says so: a link followed shows its error page, as without
      // htmx; a fragment or a form (a locked table, a database not answering) puts its
      // message in the flash area. The request still counts as failed.
      event.detail.shouldSwap = true;
    }
  });

  // No answer at all (the server or the network is down): say so rather than nothing.
  document.addEventListener("htmx:sendError", function () {
    var flashes = document.getElementById("flashes");
    if (!flashes) return;
    var message = document.createElement("p");
    message.className = "flash flash-error";
    message.setAttribute("role", "alert");
    message.textContent = "The panel did not answer. Check the connection and try again.";
    flashes.replaceChildren(message);
  });

  // My account: offer the browser's own zone when the list has it. On the document, so the
  // button works on pages that arrive by a boosted navigation too.
  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (error) {
      return "";
    }
  }

  function offerBrowserZone(root) {
    var button = root.querySelector("[data-use-browser-zone]");
    var select = root.querySelector("[data-time-zone-select]");
    if (!button || !select) return;
    var zone = browserZone();
    var offered = Array.prototype.some.call(select.options, function (option) {
      return option.value === zone;
    });
    button.hidden = !offered;
    if (offered) button.textContent = "Use my browser's zone (" + zone + ")";
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-use-browser-zone]");
    if (!button) return;
    var select = button.form && button.form.querySelector("[data-time-zone-select]");
    if (!select) return;
    select.value = browserZone();
    button.form.requestSubmit();
  });
  document.addEventListener("DOMContentLoaded", function () { offerBrowserZone(document); });
  document.addEventListener("htmx:load", function (event) { offerBrowserZone(event.detail.elt); });

  // "/" focuses the search box; Escape leaves it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
    var search = document.querySelector("[data-search]");
    if (search) {
      event.preventDefault();
      search.focus();
      search.select();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || !event.target.matches || !event.target.matches("[data-search]")) return;
    // a search box's own Escape would empty it (and search again): leave it as typed, for
    // the results, where j and k go through the rows
    event.preventDefault();
    var total = document.querySelector("#list-table .list-total");
    if (total) {
      total.setAttribute("tabindex", "-1");
      total.focus();
    } else {
      event.target.blur();
    }
  });
})();

// ---- Lists remember their state (search, filters, sort, size, page) for this tab: the way
// back from a record (its breadcrumb) returns to the same list page, not to the first.
(function () {
  "use strict";

  function storageKey(path) { return "list-state:" + path; }

  function remember() {
    if (!document.getElementById("list-state")) return;
    try {
      window.sessionStorage.setItem(storageKey(window.location.pathname),
        window.location.pathname + window.location.search);
    } catch (error) { /* storage off: links stay as they are */ }
  }

  function pointBack(root) {
    if (!root.querySelectorAll) return;
    root.querySelectorAll(".breadcrumbs a[href], a[data-list-return]").forEach(function (link) {
      var href = link.getAttribute("href");
      if (!href || href.charAt(0) !== "/" || href.indexOf("?") >= 0) return;
      var saved = null;
      try { saved = window.sessionStorage.getItem(storageKey(href)); } catch (error) { return; }
      if (saved) link.setAttribute("href", saved);
    });
  }

  // a boosted link keeps the address it had when htmx wired it: send the saved one instead
  document.addEventListener("htmx:configRequest", function (event) {
    var link = event.detail.elt;
    if (!link.matches || !link.matches(".breadcrumbs a[href], a[data-list-return]")) return;
    var href = link.getAttribute("href");
    if (href && href.indexOf("?") > 0 && event.detail.path.indexOf("?") < 0) event.detail.path = href;
  });
  document.addEventListener("DOMContentLoaded", function () { remember(); pointBack(document); });
  document.addEventListener("htmx:pushedIntoHistory", remember);
  document.addEventListener("htmx:historyRestore", remember);
  document.addEventListener("htmx:load", function (event) { pointBack(event.detail.elt); });
})();
