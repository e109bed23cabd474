// errorsink dashboard behaviour. A static file, not inline script: the CSP allows only 'self'.
(function () {
  "use strict";

  var ERROR_ROWS_LIMIT = 20;

  // Live pushes prepend rows; keep the newest 20, drop duplicates (a reconnect re-sync can
  // race a push carrying the same event) and the "no errors yet" placeholder once rows exist.
  function tidyRows(body, limit) {
    if (!body) return;
    var seen = {};
    var kept = 0;
    body.querySelectorAll("[data-event]").forEach(function (row) {
      var key = row.getAttribute("data-event");
      if (seen[key] || (limit && kept >= limit)) {
        row.remove();
        return;
      }
      seen[key] = true;
      kept += 1;
    });
    if (kept > 0) {
      body.querySelectorAll(".empty-row").forEach(function (row) { row.remove(); });
      // The first event has arrived: "send your first event" has done its job.
      var welcome = document.getElementById("first-event");
      if (welcome) welcome.remove();
    }
  }

  var UNITS = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

  function relative(date, now) {
    var seconds = Math.round((now - date) / 1000);
    if (Math.abs(seconds) < 5) return "just now";
    var future = seconds < 0;
    seconds = Math.abs(seconds);
    for (var i = 0; i < UNITS.length; i++) {
      var n = Math.floor(seconds / UNITS[i][1]);
      if (n >= 1) {
        var text = n + " " + UNITS[i][0] + (n === 1 ? "" : "s");
        return future ? "in " + text : text + " ago";
      }
    }
    return "just now";
  }

  function refreshTimes() {
    var now = Date.now();
    document.querySelectorAll("time[data-relative]").forEach(function (el) {
      var date = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(date)) el.textContent = relative(date, now);
    });
  }

  function tidy() {
    tidyRows(document.getElementById("error-rows"), ERROR_ROWS_LIMIT);
    tidyRows(document.getElementById("timeline-rows"), 0);
    refreshTimes();
  }

  function setLive(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.setAttribute("data-state", state);
    el.textContent = text;
  }

  document.addEventListener("DOMContentLoaded", tidy);
  document.addEventListener("htmx:wsAfterMessage", tidy);
  document.addEventListener("htmx:afterSettle", tidy);
  document.addEventListener("htmx:wsOpen", function () { setLive("open", "live"); });
  // Closed by the server because access ended (dashboard/access_live.py): say so, no retry.
  var ENDED = {4401: "signed out: sign in again", 4403: "no access to this project any more"};
  document.addEventListener("htmx:wsClose", function (evt) {
    var code = evt.detail && evt.detail.event ? evt.detail.event.code : 0;
    if (ENDED[code]) {
      setLive("ended", ENDED[code]);
      return;
    }
    setLive("closed", "reconnecting…");
    // The extension retries by itself after abnormal closes (1006, 1011-1013); a server that
    // restarts politely says 1001 "going away", and the page must come back then too. Each
    // reconnect gets the whole table again, so nothing is missed meanwhile.
    if (code === 1001 && document.body.contains(evt.target)) {
      setTimeout(function () { evt.detail.socketWrapper.reconnect(); }, 1000 + Math.random() * 2000);
    }
  });
  // A filter form sends only the filters that are set, so the URL says what the page shows;
  // without script the same form still works, with empty fields in the URL.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.classList || !form.classList.contains("filters")) return;
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name) return;
      var unset = el.value === "" || el.value === el.getAttribute("data-default");
      if (unset) el.disabled = true;
    });
  });
  // Back to a page from the cache: its form must be whole again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form.filters [disabled]").forEach(function (el) {
      el.disabled = false;
    });
  });
  // "Copy" beside a value: the clipboard where the browser allows it (localhost, https); on a
  // plain-http address it does not, so the value is selected for the user's own Ctrl+C.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest ? evt.target.closest("button[data-copy-from]") : null;
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy-from"));
    if (!source) return;
    var text = source.textContent;
    var done = function (label) {
      button.textContent = label;
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    var select = function () {
      var range = document.createRange();
      range.selectNodeContents(source);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      done("Selected: press Ctrl+C");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done("Copied"); }, select);
    } else {
      select();
    }
  });
  setInterval(refreshTimes, 15000);
})();
