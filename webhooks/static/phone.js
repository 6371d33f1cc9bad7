/* Registrar telephony in the browser: live call events (EventSource on ari_app's events
   listener), the incoming-call screen pop on every page, and the «Прием по телефону» window.
   Commands go to /phone/api/... (the web app relays them to ari_app's control API). */
(function () {
  "use strict";
  if (!document.querySelector(".whoami")) return; // not logged in

  var csrfInput = document.querySelector('input[name="csrf_token"]');
  var csrf = csrfInput ? csrfInput.value : "";
  var win = document.querySelector("[data-phone-window]");
  var call = null; // the current call's snapshot (window only)
  var lastEnded = null; // uid of the call that ended last (a late answer must not revive it)

  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) throw new Error(data.error || ("Ошибка " + resp.status));
        return data;
      });
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* ---------------------------------------------------------------- screen pop */
  function pop(data) {
    var old = document.querySelector('[data-testid="call-pop"][data-uid="' + data.uid + '"]');
    if (old) old.remove();
    var box = el("aside", { "class": "call-pop", "data-testid": "call-pop", "data-uid": data.uid, role: "dialog",
                            "aria-label": "Входящий звонок" });
    box.appendChild(el("h2", {}, "Входящий звонок"));
    box.appendChild(el("p", { "class": "pop-number", "data-testid": "pop-number" },
                       data.number_display || data.number));
    var p = data.patient;
    if (p) {
      var link = el("a", { href: "/patients/" + p.id, "data-testid": "pop-patient" }, p.name);
      var head = el("p", { "class": "pop-patient" });
      head.appendChild(link);
      if (p.birth_date) head.appendChild(document.createTextNode(", " + p.birth_date));
      box.appendChild(head);
      if (p.appointments.length) {
        box.appendChild(el("h3", {}, "Предстоящие приёмы"));
        var list = el("ul", { "data-testid": "pop-appointments" });
        p.appointments.forEach(function (a) {
          list.appendChild(el("li", {}, a.starts_at + " — " + a.doctor + (a.cabinet ? ", " + a.cabinet : "") +
                                        (a.extra_info ? " (" + a.extra_info + ")" : "")));
        });
        box.appendChild(list);
      } else {
        box.appendChild(el("p", { "class": "empty" }, "Предстоящих приёмов нет"));
      }
    } else {
      box.appendChild(el("p", { "class": "pop-new", "data-testid": "pop-new-patient" }, "Новый пациент"));
      box.appendChild(el("a", { "class": "button", href: "/patients?q=" + encodeURIComponent(data.number) },
                         "Найти пациента"));
    }
    var close = el("button", { type: "button", "data-testid": "pop-close" }, "Закрыть");
    close.addEventListener("click", function () { box.remove(); });
    box.appendChild(close);
    document.body.appendChild(box);
  }

  function unpop(data) {
    var box = document.querySelector('[data-testid="call-pop"][data-uid="' + data.uid + '"]');
    if (box) box.remove();
  }

  /* ---------------------------------------------------------------- events */
  /* The stream is served by ari_app's events listener, not by the web app (a stream held a
     web thread there). The web app gives a token good for a minute; on any failure (ari_app
     restarted, token expired, 401) a new token and a new stream, retried at most 2 s apart so
     a restarted ari_app is back within 5 s.
     One stream per browser: a browser opens at most 6 connections to one host, so the tabs
     share. The tab holding the lock "mis-phone-events" (Web Locks) keeps the stream and passes
     every event and its state to the others over a BroadcastChannel; when it closes, the next
     tab gets the lock and connects. Without these APIs each tab has its own stream. */
  var NO_LINK = "Нет связи с АТС: переподключение…";
  var me = (document.querySelector('[data-testid="current-user"]') || {}).textContent || "";
  var channel = window.BroadcastChannel ? new BroadcastChannel("mis-phone-events:" + me) : null;
  var shared = !!(channel && navigator.locks && navigator.locks.request);
  var leader = false; // this tab holds the stream
  var es = null;
  var retryMs = 250;
  var retryTimer = null;
  var current = { state: "", reason: "" }; // the stream's state, as the leader knows it
  var ended = false; // the server ended the stream (too many tabs, session over)
  var ready = false; // this tab has seen the stream open (once is enough for onHello)
  var onHello = [];

  function note(text) {
    // a line above the page for what the stream says to the user (no window on most pages)
    var box = document.querySelector('[data-testid="phone-events-note"]');
    if (!text) { if (box) box.remove(); return; }
    if (!box) {
      box = el("p", { "class": "flash flash-warning", role: "status", "data-testid": "phone-events-note" });
      var main = document.querySelector("main") || document.body;
      main.insertBefore(box, main.firstChild);
    }
    box.textContent = text;
  }

  function applyState(state, reason) {
    // what every tab shows of the stream's state: on, off («нет связи с АТС»), closed
    document.body.setAttribute("data-phone-events", state);
    if (state === "on") {
      note("");
      if (win && errEl && errEl.textContent === NO_LINK) error("");
    } else if (state === "off") {
      if (win) error(NO_LINK);
    } else if (state === "closed") {
      note(reason);
    }
  }

  function deliver(kind, data) {
    // other scripts (progress.js) take the events of this one shared stream from here
    document.dispatchEvent(new CustomEvent("mis:event", { detail: { type: kind, data: data } }));
    if (kind === "incoming") pop(data);
    else if (kind === "incoming_end") unpop(data);
    else if (kind === "call") { if (win) show(data); }
    else if (kind === "dtmf") { if (win) message("Собеседник нажал " + data.digit); }
  }

  function opened(calls) {
    if (win && calls && calls.length) show(calls[0]);
    if (!ready) { ready = true; onHello.forEach(function (fn) { fn(); }); }
  }

  function announce(state, reason) {
    current = { state: state, reason: reason || "" };
    applyState(state, reason);
    if (channel && leader) channel.postMessage({ type: "state", state: state, reason: reason || "" });
  }

  function connect() {
    retryTimer = null;
    fetch("/phone/events-token", { credentials: "same-origin", cache: "no-store", redirect: "manual" })
      .then(function (resp) {
        if (resp.status === 401 || resp.type === "opaqueredirect") {
          end("Сеанс работы завершён: войдите в систему заново");
          return null;
        }
        if (!resp.ok) throw new Error("Ошибка " + resp.status);
        return resp.json();
      })
      .then(function (t) { if (t) open(t); })
      .catch(offline);
  }

  function open(t) {
    var stream = new EventSource(t.url + "?token=" + encodeURIComponent(t.token));
    es = stream;
    stream.addEventListener("hello", function (e) {
      retryMs = 250;
      announce("on");
      opened(JSON.parse(e.data).calls);
    });
    stream.addEventListener("closed", function (e) { end(JSON.parse(e.data).reason); });
    // presence: colleagues' phone states, taken by presence.js from "mis:event"
    ["incoming", "incoming_end", "call", "dtmf", "progress", "presence"].forEach(function (kind) {
      stream.addEventListener(kind, function (e) {
        var data = JSON.parse(e.data);
        deliver(kind, data);
        if (channel) channel.postMessage({ type: "event", kind: kind, data: data });
      });
    });
    stream.onerror = function () {
      // EventSource would retry with the same (soon expired) token: we take over
      stream.close();
      if (es === stream) offline();
    };
  }

  function offline() {
    es = null;
    if (ended) return;
    announce("off");
    if (!retryTimer) retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 2000);
  }

  function end(reason) {
    // the server ended the stream: no reconnection until the page is reloaded
    ended = true;
    if (es) es.close();
    es = null;
    announce("closed", reason);
  }

  function lead() {
    leader = true;
    connect();
  }

  if (channel) {
    channel.onmessage = function (e) {
      var m = e.data || {};
      if (m.type === "ask" && leader && current.state) {
        channel.postMessage({ type: "state", state: current.state, reason: current.reason });
      } else if (m.type === "state" && !leader) {
        applyState(m.state, m.reason);
        if (m.state === "on" && !ready) {
          // a tab that joins an open stream asks for the active calls the stream's hello had
          fetch("/phone/api/calls", { credentials: "same-origin" })
            .then(function (r) { return r.json(); })
            .then(function (d) { opened(d.calls); }, function () { opened([]); });
        }
      } else if (m.type === "event" && !leader) {
        deliver(m.kind, m.data);
      }
    };
  }

  window.addEventListener("pagehide", function () { if (es) es.close(); es = null; });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted && leader && !es && !ended) connect();
  });
  if (shared) {
    // held until this tab goes: then the next tab waiting for it takes the stream over
    navigator.locks.request("mis-phone-events:" + me, function () {
      lead();
      return new Promise(function () {});
    });
    channel.postMessage({ type: "ask" });
  } else {
    lead();
  }

  if (!win) return;

  /* ---------------------------------------------------------------- the window */
  var number = win.querySelector('[data-testid="phone-number"]');
  var stateEl = win.querySelector('[data-testid="line-state"]');
  var peerEl = win.querySelector('[data-testid="line-peer"]');
  var errEl = win.querySelector('[data-testid="phone-error"]');
  var msgEl = win.querySelector('[data-testid="phone-message"]');
  var transferPanel = win.querySelector('[data-testid="transfer-panel"]');
  var transferSteps = transferPanel.querySelectorAll('[data-transfer-step="attended"]');
  var patientId = win.getAttribute("data-patient-id") || "";
  var patientName = peerEl.textContent;
  var dialing = false; // the status line says «Набор номера…» of the call being set up

  function error(text) { errEl.textContent = text || ""; }
  function message(text) { msgEl.textContent = text || ""; dialing = false; }

  function showTransfer(snap) {
    // «Завершить перевод» / «Отменить перевод» only while a consultation is going on
    var consulting = !!(snap && snap.transfer && snap.transfer.mode === "attended");
    transferSteps.forEach(function (node) { node.hidden = !consulting; });
    if (consulting) transferPanel.hidden = false;
    if (!snap || snap.state === "ended") transferPanel.hidden = true;
  }

  function show(snap) {
    if (call && snap.uid !== call.uid && snap.state === "ended") return;
    // a command's answer can arrive after newer events of the same call: keep the newest
    if (call && snap.uid === call.uid && (snap.version || 0) < (call.version || 0)) return;
    if (!call && lastEnded === snap.uid) return;
    if (snap.state === "ended") lastEnded = snap.uid;
    call = snap;
    var label = snap.state_title;
    if (snap.state === "ended") label = "Свободна";
    else if (snap.recording) label += " · Запись";
    stateEl.textContent = label;
    stateEl.setAttribute("data-state", snap.state);
    win.setAttribute("data-call-uid", snap.uid);
    var peer = snap.caller_name || snap.number_display || snap.number;
    if (snap.transfer) peer += " → " + snap.transfer.target;
    peerEl.textContent = snap.state === "ended" ? (snap.reason || "") : peer;
    // «Набор номера…» lasts while the phones ring, not into the talk or past the end
    if (dialing && snap.state !== "dialing" && snap.state !== "calling") message("");
    if (snap.message) message(snap.message);
    showTransfer(snap);
    if (snap.state === "ended") call = null;
  }

  function act(path, body) {
    error("");
    if (!call) { error("Нет активного звонка"); return Promise.resolve(); }
    return post("/phone/api/calls/" + call.uid + "/" + path, body).then(show).catch(function (e) {
      error(e.message);
    });
  }

  function dial() {
    // a new call starts on a clean line: no reason, error or message of the one before
    error(""); message("");
    peerEl.textContent = patientName;
    var body = { target: number.value };
    if (patientId) body.patient_id = patientId;
    var appt = win.getAttribute("data-appointment-id");
    if (appt) body.appointment_id = appt;
    var cb = win.getAttribute("data-callback-of");
    if (cb) body.callback_of = cb;
    message("Набор номера " + number.value + "…");
    dialing = true;
    return post("/phone/api/calls", body).then(show).catch(function (e) { message(""); error(e.message); });
  }

  win.addEventListener("click", function (e) {
    var key = e.target.closest("[data-key]");
    if (key) {
      var digit = key.getAttribute("data-key");
      // during a call the keypad belongs to the call: tones while talking, nothing else
      if (!call) number.value += digit;
      else if (call.state === "talking") act("dtmf", { digits: digit });
      else if (call.state === "held") error("Звонок на удержании: тоновый набор недоступен, нажмите «Говорить»");
      else error("Тоновый набор возможен только во время разговора");
      return;
    }
    var btn = e.target.closest("[data-action]");
    if (!btn) return;
    var action = btn.getAttribute("data-action");
    if (action === "close") return; // a link back to the scheduler
    e.preventDefault();
    if (action === "dial") dial();
    else if (action === "hangup") act("hangup");
    else if (action === "hold") act("hold");
    else if (action === "unhold") {
      // «Говорить» answers a call ringing in the softphone window (softphone_link.js)
      if (window.misSoftphone && window.misSoftphone.ringing()) window.misSoftphone.answer();
      else act("unhold");
    }
    else if (action === "record") act(call && call.recording ? "record/stop" : "record/start");
    else if (action === "conference") act("conference", { target: number.value });
    else if (action === "transfer") {
      error("");
      if (!call) { error("Нет активного звонка"); return; }
      transferPanel.hidden = !transferPanel.hidden;
      if (!transferPanel.hidden) win.querySelector('[data-testid="transfer-target"]').focus();
    }
    else if (action === "transfer-blind" || action === "transfer-attended") {
      act("transfer", { target: win.querySelector('[data-testid="transfer-target"]').value,
                        mode: action === "transfer-blind" ? "blind" : "attended" });
    }
    else if (action === "transfer-complete") act("transfer/complete");
    else if (action === "transfer-cancel") act("transfer/cancel");
    else if (action === "find") find();
    else if (action === "phone-calls") ownCalls();
  });

  function find() {
    error("");
    var out = win.querySelector('[data-testid="find-results"]');
    out.textContent = "";
    fetch("/phone/find?q=" + encodeURIComponent(number.value), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (d.error) { error(d.error); return; }
        if (!d.patients.length) { out.appendChild(el("p", { "data-testid": "find-none" }, "Пациент не найден")); return; }
        var list = el("ul", {});
        d.patients.forEach(function (p) {
          var item = el("li", { "data-testid": "find-item" });
          item.appendChild(el("a", { href: p.url }, p.name));
          item.appendChild(document.createTextNode(" " + (p.phone || "") + " "));
          var pick = el("button", { type: "button" }, "Выбрать");
          pick.addEventListener("click", function () {
            number.value = p.phone_e164 || number.value; patientId = String(p.id);
            patientName = p.name; peerEl.textContent = p.name;
          });
          item.appendChild(pick);
          list.appendChild(item);
        });
        out.appendChild(list);
      });
  }

  function ownCalls() {
    var out = win.querySelector('[data-testid="own-phone-calls"]');
    out.textContent = "";
    fetch("/phone/api/phone-calls", { credentials: "same-origin" }).then(function (r) { return r.json(); })
      .then(function (d) {
        (d.calls || []).forEach(function (c) {
          var item = el("li", {}, c.number + " ");
          var take = el("button", { type: "button" }, "Взять под управление");
          take.addEventListener("click", function () {
            post("/phone/api/phone-calls/" + c.channel_id + "/adopt").then(show).catch(function (e) { error(e.message); });
          });
          item.appendChild(take);
          out.appendChild(item);
        });
        if (!(d.calls || []).length) out.appendChild(el("li", {}, "Нет разговоров"));
      });
  }

  if (win.getAttribute("data-autodial") === "1" && number.value) {
    // click-to-call from an appointment or a card: dial once the event stream is open
    var started = false;
    onHello.push(function () { if (!started) { started = true; dial(); } });
  }
})();
