/* The «Прием по телефону» window's link to the softphone window (softphone.js): opens it once
   and brings it forward later (never reloads it: a call lives there), shows its state, and
   lets «Говорить» here answer a call ringing there. */
(function () {
  "use strict";
  var box = document.querySelector("[data-softphone-link]");
  if (!box || !window.BroadcastChannel) return;
  var statusEl = box.querySelector('[data-testid="softphone-status"]');
  var openBtn = box.querySelector('[data-testid="btn-open-softphone"]');
  var channel = new BroadcastChannel("mis-softphone");
  var last = null;
  var NAME = "mis-softphone";

  channel.onmessage = function (ev) {
    var msg = ev.data || {};
    if (msg.type !== "state") return;
    last = msg;
    var call = msg.call && msg.call !== "idle" ? " · " + msg.call_text + (msg.peer ? " " + msg.peer : "") : "";
    statusEl.textContent = msg.conn_text + call;
    statusEl.dataset.state = msg.conn;
    openBtn.textContent = "Показать софтфон";
  };
  channel.postMessage({ type: "ping" });

  openBtn.addEventListener("click", function () {
    // an empty URL finds the open window without reloading it
    var w = last ? window.open("", NAME) : null;
    if (!w) w = window.open(box.dataset.url, NAME, "popup,width=460,height=780");
    if (!w) { statusEl.textContent = "Браузер заблокировал окно софтфона: разрешите всплывающие окна для этого сайта"; return; }
    w.focus();
  });

  window.misSoftphone = {
    ringing: function () { return !!(last && last.call === "ringing"); },
    answer: function () { channel.postMessage({ type: "answer" }); },
  };
})();
