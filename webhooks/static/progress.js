/* Live progress of long work (a mailing's sending, the Mango export): a bar fed by the
   `progress` events of the page's event stream (phone.js passes them on as the DOM event
   `mis:event`), with sent / failed / left, the rate and the time left, in Russian.

   Markup: an element with data-progress-kind ("mailing" | "export") and data-progress-id,
   holding a hidden [data-progress-bar] with a <progress> and a [data-progress-text].
   At the end (`done`) the page reloads to show the final state.
   Fallback (no events: ari_app down, an old browser): with data-progress-fallback="N" the
   page reloads every N seconds while no progress event came for 3·N seconds, as it did
   before the bar. */
(function () {
  "use strict";
  var boxes = document.querySelectorAll("[data-progress-kind][data-progress-id]");
  if (!boxes.length) return;

  var WORDS = {
    mailing: { done: "Отправлено", unit: "СМС/с" },
    export: { done: "Отправлено в Mango Office", unit: "записей/с" },
  };

  function number(n, digits) {
    return n.toLocaleString("ru-RU", { maximumFractionDigits: digits || 0 });
  }

  function duration(seconds) {
    // «≈ 1 ч 05 мин», «≈ 3 мин 20 с», «≈ 40 с»
    var s = Math.max(1, Math.round(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h) return "≈ " + h + " ч " + String(m).padStart(2, "0") + " мин";
    if (m) return "≈ " + m + " мин " + String(r).padStart(2, "0") + " с";
    return "≈ " + r + " с";
  }

  function text(kind, d) {
    var words = WORDS[kind] || WORDS.mailing;
    var total = d.sent + d.failed + d.left;
    var parts = [words.done + " " + number(d.sent) + " из " + number(total),
                 "ошибок " + number(d.failed), "осталось " + number(d.left)];
    if (d.rate > 0) {
      parts.push(number(d.rate, 1) + " " + words.unit);
      if (d.left > 0) parts.push("до конца " + duration(d.left / d.rate));
    }
    return parts.join(" · ");
  }

  function render(box, d) {
    var bar = box.querySelector("[data-progress-bar]");
    var meter = bar.querySelector("progress");
    var total = d.sent + d.failed + d.left;
    meter.max = Math.max(1, total);
    meter.value = d.sent + d.failed;
    bar.querySelector("[data-progress-text]").textContent = text(box.getAttribute("data-progress-kind"), d);
    ["sent", "failed", "left"].forEach(function (k) { bar.setAttribute("data-" + k, String(d[k])); });
    bar.hidden = false;
    box.setAttribute("data-progress-live", d.done ? "done" : "on");
    if (d.done) window.location.reload();
  }

  var lastEvent = 0;
  document.addEventListener("mis:event", function (e) {
    var ev = e.detail || {};
    if (ev.type !== "progress" || !ev.data) return;
    boxes.forEach(function (box) {
      if (box.getAttribute("data-progress-kind") === ev.data.kind &&
          box.getAttribute("data-progress-id") === String(ev.data.id)) {
        lastEvent = Date.now();
        render(box, ev.data);
      }
    });
  });

  boxes.forEach(function (box) {
    var every = Number(box.getAttribute("data-progress-fallback") || 0);
    if (!every) return;
    setInterval(function () {
      // the live bar keeps the page; without events (yet, or for a while) the old reload
      if (!lastEvent || Date.now() - lastEvent >= 3000 * every) window.location.reload();
    }, 1000 * every);
  });
})();
