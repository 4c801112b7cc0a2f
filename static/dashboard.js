// Live dashboard: connection indicator, resume point in the sse-connect URL, pause/resume,
// feed length. The server renders everything first; this file only adds the live parts.
(function () {
  "use strict";
  // a boosted navigation runs this file again: set up the new page, register once
  if (window.dashboardLive) {
    window.dashboardLive.setup();
    return;
  }

  var FAILURES_BEFORE_OFFLINE = 3;
  var paused = false;
  var held = [];  // messages that arrived while paused: {target, data, type}
  var failures = 0;

  function live() { return document.querySelector("[data-live]"); }

  function setState(state, label) {
    var box = document.querySelector("[data-live-state]");
    if (!box) return;
    box.setAttribute("data-live-state", state);
    box.querySelector("[data-live-label]").textContent = label;
  }

  // The SSE extension forgets Last-Event-ID when it rebuilds the EventSource after a
  // failure, so the resume point travels in the URL it reconnects to.
  function rememberId(id) {
    var root = live();
    if (!root || !id) return;
    var url = new URL(root.getAttribute("sse-connect"), window.location.href);
    url.searchParams.set("after", id);
    root.setAttribute("sse-connect", url.pathname + url.search);
  }

  function trimFeed() {
    var feed = document.getElementById("feed");
    if (!feed) return;
    var size = parseInt(feed.getAttribute("data-feed-size") || "50", 10);
    while (feed.children.length > size) feed.removeChild(feed.lastElementChild);
    var empty = document.querySelector(".feed-empty");
    if (empty && feed.children.length) empty.remove();
  }

  function apply(message) {
    var style = message.target.id === "feed" ? "afterbegin" : "innerHTML";
    htmx.swap(message.target, message.data, { swapStyle: style });
  }

  function setup() {
    var root = live();
    if (!root || root.getAttribute("data-live-ready")) return;
    root.setAttribute("data-live-ready", "1");
    setState("connecting", "Connecting…");
    var pause = document.querySelector("[data-live-pause]");
    pause.hidden = false;
    pause.addEventListener("click", function () {
      paused = !paused;
      pause.setAttribute("aria-pressed", paused ? "true" : "false");
      pause.textContent = paused ? "Resume" : "Pause";
      root.classList.toggle("is-paused", paused);
      if (!paused) {
        held.forEach(apply);
        held = [];
        trimFeed();
      }
    });
    var filter = document.querySelector("[data-live-filter] select");
    filter.addEventListener("change", function () { filter.form.requestSubmit(); });
  }

  document.addEventListener("htmx:sseOpen", function () {
    failures = 0;
    setState("live", paused ? "Live (paused)" : "Live");
  });

  document.addEventListener("htmx:sseError", function () {
    failures += 1;
    if (failures >= FAILURES_BEFORE_OFFLINE || !navigator.onLine) {
      setState("offline", "Offline, retrying");
    } else {
      setState("reconnecting", "Reconnecting…");
    }
  });

  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var message = event.detail;
    if (message.type === "reload") {
      // this page is too far behind for the server to replay what it missed: the
      // server-rendered page is the current state, and resumes from there
      event.preventDefault();
      setState("reconnecting", "Reloading…");
      window.location.reload();
      return;
    }
    if (message.type === "order") rememberId(message.lastEventId);
    if (!paused) return;
    event.preventDefault();
    if (message.type === "order") {
      held.push({ target: event.target, data: message.data, type: message.type });
      var feed = document.getElementById("feed");
      var size = feed ? parseInt(feed.getAttribute("data-feed-size") || "50", 10) : 50;
      var orders = held.filter(function (m) { return m.type === "order"; });
      if (orders.length > size) held.splice(held.indexOf(orders[0]), 1);
    } else {
      held = held.filter(function (m) { return m.type !== message.type; });
      held.push({ target: event.target, data: message.data, type: message.type });
    }
  });

  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.target.id === "feed") trimFeed();
  });

  window.addEventListener("offline", function () { setState("offline", "Offline"); });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
  window.dashboardLive = { setup: setup };
})();
