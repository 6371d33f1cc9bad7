/* Presence: every colleague's phone state (зарегистрирован / не зарегистрирован / занят /
   звонит), live. The first paint comes from /phone/api/presence (the colleagues from the
   database, their states from ari_app, «нет данных» when it cannot tell); then the events
   stream's `presence` events (phone.js hands them out as "mis:event") keep it current.
   Each state carries ari_app's sequence number, so a snapshot answered late cannot undo a
   newer event; another `epoch` (ari_app restarted) starts over.
   Any element with data-presence-user="<user id>" shows that user's state; an element with
   data-presence-directory gets the directory of extensions with «Позвонить». */
(function () {
  "use strict";
  var UNKNOWN = { state: "unknown", title: "нет данных" };
  var directory = document.querySelector("[data-presence-directory]");
  if (!directory && !document.querySelector("[data-presence-user]")) return;

  var epoch = null; // ari_app's process the states come from ("" from the web's fallback)
  var seqs = {}; // user id -> sequence number of the state shown
  var me = directory ? directory.getAttribute("data-me") : "";

  function paint(id, u) {
    document.querySelectorAll('[data-presence-user="' + id + '"]').forEach(function (node) {
      node.textContent = u.title;
      node.setAttribute("data-state", u.state);
    });
  }

  function apply(data) {
    if (data.epoch !== epoch) { epoch = data.epoch; seqs = {}; }
    (data.users || []).forEach(function (u) {
      if (seqs[u.id] !== undefined && u.seq < seqs[u.id]) return; // older than what we show
      seqs[u.id] = u.seq;
      paint(u.id, u);
    });
  }

  function unknownAll() {
    // the stream is down: whatever we showed may be stale now
    epoch = null; seqs = {};
    document.querySelectorAll("[data-presence-user]").forEach(function (node) {
      paint(node.getAttribute("data-presence-user"), UNKNOWN);
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function call(extension) {
    // the phone window's own «Звонок» with the extension in its number field (phone.js dials)
    var number = document.querySelector('[data-testid="phone-number"]');
    var dial = document.querySelector('[data-testid="btn-dial"]');
    if (!number || !dial) return;
    number.value = extension;
    dial.click();
  }

  function build(users) {
    var body = directory.querySelector("tbody");
    var seen = {};
    users.forEach(function (u) {
      if (String(u.id) === me) return; // his own phone is shown by the line
      seen[u.id] = true;
      if (body.querySelector('tr[data-user-id="' + u.id + '"]')) return;
      var row = el("tr", { "data-testid": "directory-row", "data-user-id": String(u.id), "data-extension": u.extension });
      row.appendChild(el("td", {}, u.name));
      row.appendChild(el("td", {}, u.extension));
      var cell = el("td", {});
      cell.appendChild(el("span", { "class": "presence", "data-presence-user": String(u.id), "data-state": "unknown",
                                    "data-testid": "presence" }, UNKNOWN.title));
      row.appendChild(cell);
      var act = el("td", {});
      var btn = el("button", { type: "button", "data-testid": "directory-call" }, "Позвонить");
      btn.addEventListener("click", function () { call(u.extension); });
      act.appendChild(btn);
      row.appendChild(act);
      body.appendChild(row);
    });
    body.querySelectorAll("tr[data-user-id]").forEach(function (row) {
      if (!seen[row.getAttribute("data-user-id")]) row.remove(); // disabled since the last paint
    });
    var empty = directory.querySelector("[data-directory-empty]");
    if (empty) empty.hidden = body.querySelectorAll("tr[data-user-id]").length > 0;
  }

  function load() {
    fetch("/phone/api/presence", { credentials: "same-origin", cache: "no-store" })
      .then(function (resp) { if (!resp.ok) throw new Error(String(resp.status)); return resp.json(); })
      .then(function (data) {
        if (directory) build(data.users || []);
        apply(data);
      })
      .catch(unknownAll);
  }

  document.addEventListener("mis:event", function (e) {
    if (e.detail && e.detail.type === "presence") apply(e.detail.data);
  });
  // phone.js says on <body data-phone-events> whether the stream is open: read the states
  // again each time it opens (events were missed while it was down), forget them when not
  var last = document.body.getAttribute("data-phone-events");
  new MutationObserver(function () {
    var now = document.body.getAttribute("data-phone-events");
    if (now === last) return;
    last = now;
    if (now === "on") load();
    else unknownAll();
  }).observe(document.body, { attributes: true, attributeFilter: ["data-phone-events"] });
  load();
})();
