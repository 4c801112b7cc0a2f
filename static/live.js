// Live changes for every table, one stream per browser.
//
// The tabs of a browser share one /live/changes stream: the tab holding the Web Lock
// "admin-live" is the leader, opens the stream and passes each change to the other tabs on a
// BroadcastChannel. When the leader closes, its lock passes to a waiting tab, which resumes
// the stream after the last change any tab saw (?after=), so none is missed or doubled.
// Without Web Locks or BroadcastChannel every tab opens its own stream.
(function () {
  "use strict";
  var CHANNEL = "admin-live";
  var channel = "BroadcastChannel" in window ? new BroadcastChannel(CHANNEL) : null;
  var lastId = null;
  var source = null;
  var streamState = "connecting";

  function remember(id) {
    var n = Number(id);
    if (id && (lastId === null || n > lastId)) lastId = n;
  }

  function openStream() {
    if (lastId === null) {
      // the page's own position: what changed while it loaded is replayed, not lost
      var meta = document.querySelector("meta[name=live-after]");
      if (meta) remember(meta.getAttribute("content"));
    }
    var url = "/live/changes" + (lastId !== null ? "?after=" + lastId : "");
    source = new EventSource(url);
    source.addEventListener("open", function () { setState("live"); });
    source.addEventListener("error", function () { setState("reconnecting"); });
    source.addEventListener("change", function (event) {
      remember(event.lastEventId);
      var message = { type: "change", id: event.lastEventId, change: JSON.parse(event.data) };
      if (channel) channel.postMessage(message);
      handle(message);
    });
    source.addEventListener("reload", function (event) {
      remember(event.lastEventId);
      var message = { type: "reload", id: event.lastEventId };
      if (channel) channel.postMessage(message);
      handle(message);
    });
  }

  function setState(state) {
    streamState = state;
    if (channel && source) channel.postMessage({ type: "state", state: state });
    showState();
  }

  if (channel) {
    channel.addEventListener("message", function (event) {
      var message = event.data;
      if (message.type === "state") { streamState = message.state; showState(); return; }
      if (message.type === "hello") {
        if (source) channel.postMessage({ type: "state", state: streamState });
        return;
      }
      if (message.id) remember(message.id);
      handle(message);
    });
  }

  if (channel) channel.postMessage({ type: "hello" });
  if (channel && navigator.locks) {
    navigator.locks.request(CHANNEL, function () {
      openStream();
      // held while this tab lives: the lock passes on when it closes
      return new Promise(function () {});
    });
  } else {
    openStream();
  }

  // ---- what the page does with a change

  function bar() { return document.querySelector("[data-live-table]"); }

  var MATCH_DELAY_MS = 250;
  var MATCH_BATCH = 200;

  function state(el) {
    if (!el.liveState) {
      // fresh: keys of new rows this view would show (the server said so); asking: keys
      // waiting to be asked about; big: rows changed by statements too large to list;
      // stale: the stream could not replay what this page missed
      el.liveState = { paused: false, waiting: [], fresh: {}, asking: [], timer: null,
                       big: 0, stale: false };
    }
    return el.liveState;
  }

  function freshCount(s) { return Object.keys(s.fresh).length; }

  function handle(message) {
    var el = bar();
    if (!el) return;
    if (message.type === "reload") { state(el).stale = true; render(el); return; }
    var change = message.change;
    if (!change || change.table !== el.dataset.liveTable) return;
    var kind = el.dataset.liveKind;
    if (kind === "list") {
      var s = state(el);
      if (s.paused) { s.waiting.push(change); render(el); return; }
      applyToList(el, change);
    } else if (change.key === el.dataset.liveKey || change.key === null) {
      applyToRecord(el, change);
    }
  }

  function rowFor(el, key) {
    return key === null ? null : document.getElementById("row-" + key);
  }

  // The list's own query (search, filters, sort, cursor) and the page's lower bound: the
  // server answers which of the keys this view would show.
  function askMatching(el) {
    var s = state(el);
    s.timer = null;
    var keys = s.asking.splice(0, MATCH_BATCH);
    if (!keys.length) return;
    var params = new URLSearchParams(location.search);
    var next = document.querySelector(".pagination a[rel=next]");
    if (next) {
      var end = new URL(next.href, location.href).searchParams.get("after");
      if (end) params.set("end", end);
    }
    keys.forEach(function (key) { params.append("key", key); });
    fetch(el.dataset.liveUrl + "/matching?" + params.toString(), {
      headers: { "Accept": "application/json" }, credentials: "same-origin"
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      if (!answer) return;
      answer.keys.forEach(function (key) {
        if (!rowFor(el, key)) s.fresh[key] = true;
      });
      render(el);
    }).catch(function () { /* the next change asks again */ }).then(function () {
      if (s.asking.length && !s.timer) s.timer = setTimeout(function () { askMatching(el); }, 0);
    });
  }

  function consider(el, key) {
    var s = state(el);
    if (s.fresh[key] || s.asking.indexOf(key) >= 0) return;
    s.asking.push(key);
    if (!s.timer) s.timer = setTimeout(function () { askMatching(el); }, MATCH_DELAY_MS);
  }

  function applyToList(el, change) {
    var s = state(el);
    if (change.key === null) { s.big += change.rows || 1; render(el); return; }
    var row = rowFor(el, change.key);
    if (change.op === "delete") {
      if (s.fresh[change.key]) { delete s.fresh[change.key]; render(el); }
      if (row) strike(row);
      return;
    }
    // a new row, or one changed into this view (a new key, a value now matching the filter)
    if (!row) { if (el.dataset.liveKeyed === "yes") consider(el, change.key); return; }
    if (change.op === "insert") return;
    // a row open in the inline editor is left alone: its save meets the conflict check
    if (editing(row)) return;
    // the row comes back with the list's columns and address (the table's data-row-query)
    var list = row.closest("table[data-list]");
    var carried = (list && list.getAttribute("data-row-query")) || "";
    fetch(el.dataset.liveUrl + "/" + change.key + "/row" + carried, {
      headers: { "HX-Request": "true" }, credentials: "same-origin"
    }).then(function (response) {
      if (response.status === 404) { strike(row); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      // a request of the row's own (Edit, Cancel, Save) swaps the row it started from: a
      // row replaced meanwhile would take its answer nowhere
      if (!html || !row.isConnected || editing(row) || requesting(row)) return;
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var fresh = holder.querySelector("tr");
      if (!fresh) return;
      var checkbox = row.querySelector("input[type=checkbox]");
      var freshBox = fresh.querySelector("input[type=checkbox]");
      if (checkbox && freshBox) freshBox.checked = checkbox.checked;
      // what the reader has open or focused in the row stays so (its actions menu)
      var menu = row.querySelector("details[open]");
      var freshMenu = fresh.querySelector("details");
      if (menu && freshMenu) freshMenu.open = true;
      var hadFocus = row.contains(document.activeElement);
      var focusedSummary = hadFocus && document.activeElement.tagName === "SUMMARY";
      row.replaceWith(fresh);
      if (window.htmx) window.htmx.process(fresh);
      if (hadFocus) {
        var target = focusedSummary ? fresh.querySelector("summary") : fresh;
        if (target) target.focus();
      }
      fresh.classList.add("live-updated");
      setTimeout(function () { fresh.classList.remove("live-updated"); }, 2000);
    });
  }

  function editing(row) {
    return row.hasAttribute("data-inline-edit") || row.querySelector("input:not([type=checkbox]), select, textarea") !== null;
  }

  function requesting(row) {
    return row.classList.contains("htmx-request") || row.querySelector(".htmx-request") !== null;
  }

  function strike(row) {
    row.classList.add("live-deleted");
    row.setAttribute("aria-disabled", "true");
    row.removeAttribute("data-href");
    row.tabIndex = -1;
    row.querySelectorAll("input, button, a").forEach(function (item) {
      if ("disabled" in item) item.disabled = true;
      item.tabIndex = -1;
    });
  }

  function ago(at) {
    var seconds = Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));
    return seconds < 60 ? seconds + " s ago" : Math.round(seconds / 60) + " min ago";
  }

  var FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";

  // where the focus is among a part's focusable elements, null when it is not in the part:
  // the fresh copy of the part takes it at the same place, so a refresh never drops a
  // keyboard user back to the page's start
  function focusIndex(node) {
    var active = document.activeElement;
    if (!active || !node.contains(active)) return null;
    return Array.prototype.indexOf.call(node.querySelectorAll(FOCUSABLE), active);
  }

  function applyToRecord(el, change) {
    var label = el.querySelector(".live-state");
    var who = change.by || "someone";
    var history = el.dataset.liveUrl + "/" + el.dataset.liveKey + "/history";
    if (el.dataset.liveKind === "form") {
      if (change.by && change.by === el.dataset.liveMe) return;
      var verb = change.op === "delete" ? "Deleted" : "Changed";
      label.textContent = "";
      label.appendChild(document.createTextNode(verb + " by " + who + " "));
      var when = document.createElement("span");
      when.dataset.liveAt = change.at;
      when.textContent = ago(change.at);
      label.appendChild(when);
      label.appendChild(document.createTextNode(" — "));
      var link = document.createElement("a");
      link.href = history;
      link.target = "_blank";
      link.textContent = "see what changed";
      label.appendChild(link);
      return;
    }
    if (change.op === "delete") {
      label.textContent = "This record was deleted by " + who + ".";
      return;
    }
    fetch(location.href, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var page = new DOMParser().parseFromString(html, "text/html");
      // the record's name may have changed: its heading, breadcrumbs and tab title follow
      document.title = page.title;
      [".breadcrumbs", "main h1", ".details", ".related-records"].forEach(function (selector) {
        var now = document.querySelectorAll(selector);
        var next = page.querySelectorAll(selector);
        if (now.length !== next.length) return;
        now.forEach(function (node, i) {
          var fresh = document.importNode(next[i], true);
          var focused = focusIndex(node);
          node.replaceWith(fresh);
          if (focused === null) return;
          var same = fresh.querySelectorAll(FOCUSABLE)[focused];
          if (!same) {
            fresh.tabIndex = -1;  // its element is gone: the part itself takes the focus
            same = fresh;
          }
          same.focus({ preventScroll: true });
        });
      });
      // what the page's other scripts do to fresh content (relative times) applies here too
      document.dispatchEvent(new CustomEvent("admin:content-replaced"));
      label.textContent = "Updated by " + who + " " + ago(change.at) + ".";
    });
  }

  function render(el) {
    var s = state(el);
    var showButton = el.querySelector("[data-changes-show]");
    if (!showButton) { showState(); return; }
    var text = "";
    var plural = el.dataset.livePlural || el.dataset.liveTable;
    if (s.big || s.stale) {
      // too many to show one by one: the page is reloaded
      var what = s.big ? s.big.toLocaleString() + " rows of " + plural + " changed"
                       : "Missed changes";
      text = what + " — reload";
      showButton.dataset.changesReload = "yes";
    } else if (freshCount(s)) {
      text = freshCount(s) + " new — show them";
      delete showButton.dataset.changesReload;
    }
    showButton.hidden = text === "";
    showButton.textContent = text;
    showState();
  }

  // "show them": the list's own fragment again (its sort places the new rows), checked
  // boxes kept, new rows highlighted; a full reload only when that fails.
  function showFresh(el) {
    var s = state(el);
    var box = document.getElementById("list-table");
    if (!box || el.querySelector("[data-changes-show]").dataset.changesReload) {
      location.reload();
      return;
    }
    var keys = Object.keys(s.fresh);
    var checked = Array.prototype.map.call(
      box.querySelectorAll("tr[id^='row-'] input[type=checkbox]:checked"),
      function (input) { return input.closest("tr").id; });
    fetch(location.href, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("list " + response.status);
        return response.text();
      }).then(function (html) {
        // rows open in the inline editor (what was typed) or waiting for an answer of their
        // own stay as they are, in their place in the fresh list
        var kept = Array.prototype.filter.call(
          box.querySelectorAll("tr[id^='row-']"),
          function (row) { return editing(row) || requesting(row); });
        var focused = document.activeElement;
        box.innerHTML = html;
        if (window.htmx) window.htmx.process(box);
        var body = box.querySelector("tbody");
        kept.forEach(function (row) {
          var fresh = box.querySelector("#" + CSS.escape(row.id));
          if (fresh) fresh.replaceWith(row);
          else if (body) body.insertBefore(row, body.firstChild);
        });
        if (focused && focused !== document.activeElement && focused.isConnected) focused.focus();
        checked.forEach(function (id) {
          var input = document.querySelector("#" + CSS.escape(id) + " input[type=checkbox]");
          if (input) input.checked = true;
        });
        keys.forEach(function (key) {
          var row = rowFor(el, key);
          if (!row) return;
          row.classList.add("live-updated");
          setTimeout(function () { row.classList.remove("live-updated"); }, 2000);
        });
        s.fresh = {};
        render(el);
      }).catch(function () { location.reload(); });
  }

  function showState() {
    var el = bar();
    if (!el || el.dataset.liveKind !== "list") return;
    var s = state(el);
    var label = el.querySelector(".live-state");
    var text;
    if (s.paused) {
      text = "Paused · " + s.waiting.length + " waiting";
      el.dataset.changesState = "paused";
    } else if (streamState === "live") {
      text = "Live";
      el.dataset.changesState = "live";
    } else {
      text = "Reconnecting…";
      el.dataset.changesState = "offline";
    }
    if (label.textContent !== text) label.textContent = text;
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    var el = bar();
    if (!el || !(target instanceof Element)) return;
    if (target.closest("[data-changes-pause]")) {
      var s = state(el);
      s.paused = !s.paused;
      target.setAttribute("aria-pressed", String(s.paused));
      target.textContent = s.paused ? "Resume" : "Pause";
      if (!s.paused) {
        var waiting = s.waiting;
        s.waiting = [];
        waiting.forEach(function (change) { applyToList(el, change); });
      }
      render(el);
    } else if (target.closest("[data-changes-show]")) {
      showFresh(el);
    }
  });

  setInterval(function () {
    document.querySelectorAll("[data-live-at]").forEach(function (when) {
      when.textContent = ago(when.dataset.liveAt);
    });
  }, 5000);
  // ---- presence: an open edit form says so, and shows who else has it open

  var presenceTimer = null;
  var presenceFor = null;

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function presenceUrl(el) {
    return el.dataset.liveUrl + "/" + el.dataset.liveKey + "/presence";
  }

  function showEditors(el, names) {
    var box = el.querySelector("[data-live-presence]");
    if (!box) return;
    box.textContent = names.length ? names.join(", ") + (names.length === 1 ? " is" : " are") +
      " editing this record" : "";
    box.hidden = names.length === 0;
  }

  function pingPresence() {
    var el = bar();
    if (!el || el.dataset.liveKind !== "form" || !el.isConnected) { stopPresence(); return; }
    fetch(presenceUrl(el), {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      if (answer) showEditors(el, answer.editing);
    }).catch(function () { /* the next ping tries again */ });
  }

  function stopPresence() {
    if (presenceTimer) clearInterval(presenceTimer);
    presenceTimer = null;
    if (presenceFor) {
      // keepalive: sent even as the page goes away
      fetch(presenceFor + "?gone=1", {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: { "X-CSRF-Token": csrf() }
      }).catch(function () {});
      presenceFor = null;
    }
  }

  function followPresence() {
    var el = bar();
    var url = el && el.dataset.liveKind === "form" ? presenceUrl(el) : null;
    if (url === presenceFor) return;
    stopPresence();
    if (!url) return;
    presenceFor = url;
    pingPresence();
    presenceTimer = setInterval(pingPresence, 15000);
  }

  window.addEventListener("pagehide", stopPresence);
  document.addEventListener("DOMContentLoaded", followPresence);
  document.addEventListener("htmx:afterSettle", followPresence);
  if (document.readyState !== "loading") followPresence();
  document.addEventListener("DOMContentLoaded", showState);
  document.addEventListener("htmx:afterSettle", showState);
})();
