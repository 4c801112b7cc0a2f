// CSV upload with drag-and-drop and a progress bar. Without JS the form posts normally.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function randomToken() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function setUp(form) {
    if (form.dataset.uploadReady) return;
    form.dataset.uploadReady = "1";
    var input = form.querySelector('input[type="file"]');
    var zone = form.querySelector("[data-dropzone]");
    var progress = form.querySelector("progress");
    var status = form.querySelector('[role="status"]');
    var button = form.querySelector('button[type="submit"]');
    var result = document.querySelector(form.dataset.result || "#import-result");
    var cancel = form.querySelector("#import-cancel");
    var phases = form.querySelector("#import-phases");
    var PHASE_WORDS = { received: "File received", checked: "Rows read and checked",
                        written: "Rows written", indexes: "Keys and indexes checked" };

    function pollPhases(url) {
      var request = new XMLHttpRequest();
      request.open("GET", url);
      request.addEventListener("load", function () {
        if (request.status !== 200 || !phases) return;
        var state = JSON.parse(request.responseText);
        phases.hidden = false;
        phases.replaceChildren.apply(phases, state.phases.map(function (phase) {
          var item = document.createElement("li");
          item.textContent = (PHASE_WORDS[phase.phase] || phase.phase) +
            (phase.rows !== null ? ": " + phase.rows.toLocaleString() + " rows" : "") +
            " (" + phase.elapsed.toFixed(1) + " s)";
          return item;
        }));
      });
      request.send();
    }

    if (zone && input) {
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (event) {
          event.preventDefault();
          zone.classList.add("dragging");
        });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
      });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        if (event.dataTransfer && event.dataTransfer.files.length) {
          input.files = event.dataTransfer.files;
          status.textContent = "Ready: " + input.files[0].name;
        }
      });
    }

    form.addEventListener("submit", function (event) {
      if (!window.FormData || !window.XMLHttpRequest) return;
      event.preventDefault();
      if (!input.files.length) {
        status.textContent = "Choose a CSV file first.";
        return;
      }
      var xhr = new XMLHttpRequest();
      // "Validate only" posts to its own formaction (?dry_run=1): the fields before the
      // file are all the server reads first, so the choice travels in the address
      var submitter = event.submitter;
      var action = submitter && submitter.hasAttribute("formaction") ? submitter.formAction : form.action;
      var dryRun = action.indexOf("dry_run=1") >= 0;
      // the server reports its phases under this token; the page polls them
      var token = randomToken();
      action += (action.indexOf("?") >= 0 ? "&" : "?") + "progress=" + token;
      var progressUrl = form.action.split("?")[0] + "/progress/" + token;
      var poller = null;
      xhr.open("POST", action);
      xhr.setRequestHeader("X-CSRF-Token", csrfToken());
      xhr.setRequestHeader("HX-Request", "true");
      progress.hidden = false;
      progress.value = 0;
      button.disabled = true;
      status.textContent = "Uploading…";
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          progress.value = Math.round((e.loaded / e.total) * 100);
          status.textContent = "Uploading… " + progress.value + "%";
        }
      });
      xhr.upload.addEventListener("load", function () {
        progress.value = 100;
        status.textContent = dryRun ? "Checking rows (nothing is written)…" : "Checking and writing rows…";
        poller = setInterval(function () { pollPhases(progressUrl); }, 500);
      });
      if (cancel) {
        cancel.hidden = false;
        cancel.onclick = function () {
          cancel.disabled = true;
          status.textContent = "Cancelling…";
          var request = new XMLHttpRequest();
          request.open("POST", progressUrl + "/cancel");
          request.setRequestHeader("X-CSRF-Token", csrfToken());
          request.send();
          // before the file is received, stopping the upload is the cancel
          if (progress.value < 100) xhr.abort();
        };
      }
      function stopPolling() {
        if (poller) clearInterval(poller);
        poller = null;
        if (cancel) { cancel.hidden = true; cancel.disabled = false; }
      }
      xhr.addEventListener("abort", function () {
        stopPolling();
        button.disabled = false;
        status.textContent = "Cancelled: nothing was imported.";
      });
      xhr.addEventListener("load", function () {
        stopPolling();
        button.disabled = false;
        if (xhr.status === 200 || xhr.status === 422) {
          status.textContent = xhr.status === 200 ? (dryRun ? "Checked: nothing was written." : "Done.") : "Nothing imported.";
          // the result fragment: escaped HTML from our own templates
          result.innerHTML = xhr.responseText;
        } else {
          status.textContent = "Nothing imported.";
          // an error page (403, 413, ...): show its message only
          var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
          var message = doc.querySelector(".error-page p:not(.status-code), p.flash");
          var box = document.createElement("p");
          box.className = "flash flash-error";
          box.textContent = message ? message.textContent : "The server answered " + xhr.status + ".";
          result.replaceChildren(box);
        }
      });
      xhr.addEventListener("error", function () {
        stopPolling();
        button.disabled = false;
        status.textContent = "The upload failed (connection lost). Nothing was imported.";
      });
      // the server reads the fields before the file: the file goes last, after the
      // preview's choices (which sit outside the form)
      var data = new FormData(form);
      var file = data.get("file");
      data.delete("file");
      data.append("file", file);
      xhr.send(data);
    });

    var previewBox = document.getElementById("import-preview");
    function showPreview(extra) {
      if (!previewBox || !input.files.length) return;
      var file = input.files[0];
      var params = new URLSearchParams({ size: String(file.size) });
      var mode = form.querySelector('input[name="mode"]:checked');
      if (mode) params.set("mode", mode.value);
      var ignore = form.querySelector('input[name="ignore_unknown"]');
      if (ignore && ignore.checked) params.set("ignore_unknown", "1");
      Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
      var request = new XMLHttpRequest();
      request.open("POST", previewBox.dataset.previewUrl + "?" + params.toString());
      request.setRequestHeader("X-CSRF-Token", csrfToken());
      request.setRequestHeader("Content-Type", "text/csv");
      request.setRequestHeader("HX-Request", "true");
      request.addEventListener("load", function () {
        if (request.status === 200) {
          previewBox.innerHTML = request.responseText;  // our own escaped template
        } else {
          previewBox.textContent = "No preview (the server answered " + request.status + ").";
        }
      });
      request.send(file.slice(0, 256 * 1024));
    }
    if (input) input.addEventListener("change", function () { showPreview(); });
    if (zone) zone.addEventListener("drop", function () { setTimeout(showPreview, 0); });
    if (previewBox) {
      previewBox.addEventListener("change", function (event) {
        var target = event.target;
        if (!target.matches || !target.matches("[data-preview-option]")) return;
        var extra = {};
        previewBox.querySelectorAll("[data-preview-option]").forEach(function (select) {
          extra[select.name] = select.value;
        });
        showPreview(extra);
      });
    }
  }

  function scan() {
    document.querySelectorAll("form[data-upload]").forEach(setUp);
  }
  document.addEventListener("DOMContentLoaded", scan);
  document.addEventListener("htmx:load", scan);
  scan();
})();
