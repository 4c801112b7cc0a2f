// CSV upload with drag-and-drop and a progress bar. Without JS the form posts normally.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
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
      });
      xhr.addEventListener("load", function () {
        button.disabled = false;
        if (xhr.status === 200 || xhr.status === 422) {
          status.textContent = xhr.status === 200 ? (dryRun ? "Checked: nothing was written." : "Done.") : "Nothing imported.";
          // the result fragment: escaped HTML from our own templates
          result.innerHTML = xhr.responseText;
        } else {
          status.textContent = "Nothing imported.";
          // an error page (403, 413, ...): show its message only
          var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
          var message = doc.querySelector(".error-page p:not(.status-code)");
          var box = document.createElement("p");
          box.className = "flash flash-error";
          box.textContent = message ? message.textContent : "The server answered " + xhr.status + ".";
          result.replaceChildren(box);
        }
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        status.textContent = "The upload failed (connection lost). Nothing was imported.";
      });
      xhr.send(new FormData(form));
    });
  }

  function scan() {
    document.querySelectorAll("form[data-upload]").forEach(setUp);
  }
  document.addEventListener("DOMContentLoaded", scan);
  document.addEventListener("htmx:load", scan);
  scan();
})();
