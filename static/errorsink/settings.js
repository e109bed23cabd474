// Session settings panel: live character count and speech preview (htmx comes from base.html).
// Static file only: the CSP is script-src 'self', so no inline scripts or handlers anywhere.
(function () {
  "use strict";
  // The panel template links this script; the page may render it more than once.
  if (window.errorsinkSettingsPanel) return;
  window.errorsinkSettingsPanel = true;

  // The server counts code points after trimming; String.length would count an emoji twice.
  function spokenLength(text) {
    return Array.from(text.trim()).length;
  }

  function updateCount(input) {
    var panel = input.closest("[data-settings-panel]");
    var counter = panel && panel.querySelector("[data-char-count]");
    if (!counter) return;
    var max = Number(input.dataset.max);
    var length = spokenLength(input.value);
    counter.textContent = length + " / " + max;
    counter.classList.toggle("over", length > max);
  }

  function speechAvailable() {
    return Boolean(window.speechSynthesis) && typeof window.SpeechSynthesisUtterance === "function";
  }

  function textToSpeak(panel) {
    var input = panel.querySelector("[data-tts-input]");
    if (input) return input.value.trim();
    var shown = panel.querySelector("[data-tts-text]");
    return shown ? shown.textContent.trim() : "";
  }

  function preview(button) {
    var panel = button.closest("[data-settings-panel]");
    var text = panel ? textToSpeak(panel) : "";
    if (!text || !speechAvailable()) return;
    window.speechSynthesis.cancel(); // a second click restarts instead of queueing
    window.speechSynthesis.speak(new window.SpeechSynthesisUtterance(text));
  }

  function initPanel(panel) {
    var input = panel.querySelector("[data-tts-input]");
    if (input) updateCount(input);
    var available = speechAvailable();
    panel.querySelectorAll("[data-tts-preview]").forEach(function (button) {
      button.disabled = !available;
    });
    panel.querySelectorAll("[data-tts-unavailable]").forEach(function (note) {
      note.hidden = available;
    });
  }

  function initWithin(root) {
    if (!root || !root.querySelectorAll) return;
    if (root.matches("[data-settings-panel]")) initPanel(root);
    root.querySelectorAll("[data-settings-panel]").forEach(initPanel);
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("[data-tts-input]")) updateCount(event.target);
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-tts-preview]");
    if (button && !button.disabled) preview(button);
  });
  // Each swapped-in panel is new markup: count and preview state must be set again.
  document.addEventListener("htmx:load", function (event) {
    initWithin(event.target);
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      initWithin(document.body);
    });
  } else {
    initWithin(document.body);
  }
})();
