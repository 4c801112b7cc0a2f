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

  function state(el) {
    if (!el.liveState) el.liveState = { paused: false, waiting: [], fresh: 0, big: 0 };
    return el.liveState;
  }

  function handle(message) {
    var el = bar();
    if (!el) return;
    if (message.type === "reload") { state(el).big += 1; render(el); return; }
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

  function applyToList(el, change) {
    var s = state(el);
    if (change.key === null) { s.big += change.rows || 1; render(el); return; }
    var row = rowFor(el, change.key);
    if (change.op === "insert") {
      if (!row) { s.fresh += 1; render(el); }
      return;
    }
    if (!row) return;
    if (change.op === "delete") { strike(row); return; }
    // a row open in the inline editor is left alone: its save meets the conflict check
    if (editing(row)) return;
    fetch(el.dataset.liveUrl + "/" + change.key + "/row", {
      headers: { "HX-Request": "true" }, credentials: "same-origin"
    }).then(function (response) {
      if (response.status === 404) { strike(row); return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html || !row.isConnected || editing(row)) return;
      var holder = document.createElement("tbody");
      holder.innerHTML = html.trim();
      var fresh = holder.querySelector("tr");
      if (!fresh) return;
      var checkbox = row.querySelector("input[type=checkbox]");
      var freshBox = fresh.querySelector("input[type=checkbox]");
      if (checkbox && freshBox) freshBox.checked = checkbox.checked;
      row.replaceWith(fresh);
      if (window.htmx) window.htmx.process(fresh);
      fresh.classList.add("live-updated");
      setTimeout(function () { fresh.classList.remove("live-updated"); }, 2000);
    });
  }

  function editing(row) {
    return row.hasAttribute("data-inline-edit") || row.querySelector("input:not([type=checkbox]), select, textarea") !== null;
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
      [".details", ".related"].forEach(function (selector) {
        var now = document.querySelectorAll(selector);
        var next = page.querySelectorAll(selector);
        if (now.length !== next.length) return;
        now.forEach(function (node, i) {
          node.replaceWith(document.importNode(next[i], true));
        });
      });
      label.textContent = "Updated by " + who + " " + ago(change.at) + ".";
    });
  }

  function render(el) {
    var s = state(el);
    var showButton = el.querySelector("[data-changes-show]");
    var parts = [];
    if (s.fresh) parts.push(s.fresh + " new");
    if (s.big) parts.push(s.big + " rows changed");
    if (showButton) {
      showButton.hidden = parts.length === 0;
      showButton.textContent = parts.join(", ") + " — show them";
    }
    showState();
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
      location.reload();
    }
  });

  setInterval(function () {
    document.querySelectorAll("[data-live-at]").forEach(function (when) {
      when.textContent = ago(when.dataset.liveAt);
    });
  }, 5000);
  document.addEventListener("DOMContentLoaded", showState);
  document.addEventListener("htmx:afterSettle", showState);
})();
