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
  var CHART_REFRESH_MS = 60000;
  var paused = false;
  var held = [];  // messages that arrived while paused: {target, data, type}
  var failures = 0;
  // the connection as it is: "connecting", "live", "reconnecting", "offline"
  var connection = "connecting";
  var offlineSince = null;
  var chartTimer = null;

  function live() { return document.querySelector("[data-live]"); }

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // One truthful label from the connection and the pause: "Live", "Paused · 12 new",
  // "Reconnecting…", "Offline since 10:42".
  function render() {
    var box = document.querySelector("[data-live-state]");
    if (!box) return;
    var state = connection, label;
    if (connection === "offline") {
      label = "Offline since " + clock(offlineSince || new Date());
    } else if (connection === "reconnecting") {
      label = "Reconnecting…";
    } else if (connection === "connecting") {
      label = "Connecting…";
    } else if (paused) {
      state = "paused";
      label = "Paused · " + held.filter(function (m) { return m.type === "order"; }).length + " new";
    } else {
      label = "Live";
    }
    box.setAttribute("data-live-state", state);
    box.querySelector("[data-live-label]").textContent = label;
  }

  function setConnection(state) {
    if (state === "offline" && connection !== "offline") offlineSince = new Date();
    if (state === "live") offlineSince = null;
    connection = state;
    render();
  }

  function chartBox() { return document.getElementById("chart"); }

  // ---- The feed and the chart are rendered once for every reader, in UTC. A reader in
  // another zone (data-time-zone) gets their times named in it, with the zone's label as
  // the pages write it (data-zone-labels: the server's labels by UTC offset in minutes).
  var formats = {};

  function format(zone, options) {
    var key = zone + JSON.stringify(options);
    if (!formats[key]) {
      formats[key] = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: zone, hourCycle: "h23" }, options));
    }
    return formats[key];
  }

  function zoneLabel(zone, labels, date) {
    var part = format(zone, { timeZoneName: "longOffset" }).formatToParts(date)
      .filter(function (p) { return p.type === "timeZoneName"; })[0];
    var match = /([+-])(\d{2}):?(\d{2})?/.exec(part ? part.value : "");
    var minutes = match ? (match[1] === "-" ? -1 : 1) * (60 * +match[2] + +(match[3] || 0)) : 0;
    if (labels[minutes]) return labels[minutes];
    if (!minutes) return "UTC";
    var hours = Math.floor(Math.abs(minutes) / 60), rest = Math.abs(minutes) % 60;
    return "UTC" + (minutes < 0 ? "-" : "+") + hours + (rest ? ":" + String(rest).padStart(2, "0") : "");
  }

  function localize() {
    var root = live();
    var zone = root && root.getAttribute("data-time-zone");
    if (!zone) return;
    var labels = JSON.parse(root.getAttribute("data-zone-labels") || "{}");
    try {
      format(zone, {});
    } catch (error) {
      return;  // a zone this browser does not know: the times stay in UTC, named so
    }
    var seconds = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    root.querySelectorAll("#feed time[datetime]:not([data-local])").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      time.textContent = format(zone, seconds).format(date) + " " + zoneLabel(zone, labels, date);
      time.setAttribute("data-local", "");
    });
    var svg = root.querySelector("#chart svg.chart:not([data-local])");
    if (!svg) return;
    var minutes = svg.hasAttribute("data-with-day")
      ? { weekday: "short", hour: "2-digit", minute: "2-digit" }
      : { hour: "2-digit", minute: "2-digit" };
    function when(date) { return format(zone, minutes).format(date); }
    svg.querySelectorAll("text[data-at]").forEach(function (tick) {
      tick.textContent = when(new Date(tick.getAttribute("data-at")));
    });
    var first = Date.parse(svg.getAttribute("data-first"));
    var step = 60000 * parseInt(svg.getAttribute("data-step") || "1", 10);
    svg.querySelectorAll("rect.bar").forEach(function (bar, i) {
      // "14:00 to 15:00 UTC: 312 orders (5.2 a minute)": the times and the zone change
      var said = bar.getAttribute("data-label") || "";
      var tail = said.slice(said.indexOf(" UTC") + 4);
      var start = new Date(first + i * step);
      var label = when(start) + (step > 60000 ? " to " + when(new Date(first + (i + 1) * step)) : "") +
        " " + zoneLabel(zone, labels, start) + tail;
      bar.setAttribute("data-label", label);
      var title = bar.querySelector("title");
      if (title) title.textContent = label;
    });
    var axis = svg.querySelector("[data-zone-title]");
    if (axis) axis.textContent = "Time (" + zoneLabel(zone, labels, new Date()) + ")";
    svg.setAttribute("data-local", "");
  }

  function chartRange() {
    var box = chartBox();
    return (box && box.getAttribute("data-range")) || "hour";
  }

  // The live feed pushes the last hour's chart; another range is fetched, and again
  // each minute while it is shown.
  function showRange(name, label) {
    var box = chartBox();
    if (!box) return;
    fetch("/live/chart?range=" + encodeURIComponent(name), { headers: { "HX-Request": "true" } })
      .then(function (response) {
        if (!response.ok) throw new Error("chart " + response.status);
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        box.setAttribute("data-range", name);
        localize();
        document.querySelectorAll("a[data-chart-range]").forEach(function (link) {
          if (link.getAttribute("data-chart-range") === name) {
            link.setAttribute("aria-current", "true");
          } else {
            link.removeAttribute("aria-current");
          }
        });
        var heading = document.querySelector("#chart-heading [data-chart-label]");
        if (heading && label) heading.textContent = label;
        var url = new URL(window.location.href);
        if (name === "hour") url.searchParams.delete("range");
        else url.searchParams.set("range", name);
        history.replaceState(history.state, "", url.pathname + url.search);
      })
      .catch(function () { /* the chart shown stays; the next minute tries again */ });
    if (chartTimer) clearInterval(chartTimer);
    chartTimer = name === "hour" ? null : setInterval(function () {
      if (!document.hidden && chartRange() === name) showRange(name, null);
    }, CHART_REFRESH_MS);
  }

  function pointAt(bar) {
    var tip = document.querySelector("[data-chart-tip]");
    document.querySelectorAll(".chart .bar.is-pointed").forEach(function (b) {
      b.classList.remove("is-pointed");
    });
    if (!tip) return;
    if (!bar) { tip.textContent = ""; return; }
    bar.classList.add("is-pointed");
    tip.textContent = bar.getAttribute("data-label");
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
    localize();
  }

  function setup() {
    var root = live();
    if (!root || root.getAttribute("data-live-ready")) return;
    root.setAttribute("data-live-ready", "1");
    paused = false;
    held = [];
    setConnection("connecting");
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
      render();
    });
    document.querySelectorAll("a[data-chart-range]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        showRange(link.getAttribute("data-chart-range"), link.getAttribute("data-chart-label"));
      });
    });
    var box = chartBox();
    box.addEventListener("mouseover", function (event) {
      if (event.target.classList && event.target.classList.contains("bar")) pointAt(event.target);
    });
    box.addEventListener("mouseleave", function () { pointAt(null); });
    if (chartRange() !== "hour") showRange(chartRange(), null);
    var filter = document.querySelector("[data-live-filter] select");
    filter.addEventListener("change", function () { filter.form.requestSubmit(); });
    localize();
  }

  document.addEventListener("htmx:sseOpen", function () {
    failures = 0;
    setConnection("live");
  });

  document.addEventListener("htmx:sseError", function () {
    failures += 1;
    if (failures >= FAILURES_BEFORE_OFFLINE || !navigator.onLine) {
      setConnection("offline");
    } else {
      setConnection("reconnecting");
    }
  });

  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var message = event.detail;
    if (message.type === "reload") {
      // this page is too far behind for the server to replay what it missed: the
      // server-rendered page is the current state, and resumes from there
      event.preventDefault();
      setConnection("reconnecting");
      window.location.reload();
      return;
    }
    if (message.type === "order") rememberId(message.lastEventId);
    if (message.type === "chart" && chartRange() !== "hour") {
      event.preventDefault();  // another range is shown: it refreshes itself
      return;
    }
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
    render();
  });

  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.target.id === "feed") trimFeed();
    localize();
  });

  window.addEventListener("offline", function () { setConnection("offline"); });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
  window.dashboardLive = { setup: setup };
})();
