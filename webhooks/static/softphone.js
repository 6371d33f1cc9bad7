/* The built-in softphone (JsSIP over Asterisk's websocket, WebRTC media) in its own long-lived
   window: a call lives in this document, so the registrar may navigate the main window freely.
   The main window's «Прием по телефону» talks to it over the BroadcastChannel "mis-softphone"
   (state out; "answer" and "open" in). Devices are kept by label: a browser's device ids
   change with its profile, the label is what the registrar recognises. */
(function () {
  "use strict";
  var root = document.querySelector("[data-softphone]");
  if (!root || !window.JsSIP) return;

  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  function q(id) { return root.querySelector('[data-testid="' + id + '"]'); }
  var stateEl = q("softphone-state"), callStateEl = q("sp-call-state"), peerEl = q("sp-peer");
  var errorEl = q("sp-error"), numberEl = q("sp-number"), waitingEl = q("sp-waiting");
  var micSel = q("sp-mic"), speakerSel = q("sp-speaker"), noteEl = q("device-note");
  var levelEl = q("mic-level"), settingsMsg = q("sp-settings-message");
  var remoteAudio = q("sp-remote-audio"), ringAudio = q("sp-ring-audio");
  var buttons = {};
  root.querySelectorAll("[data-sp]").forEach(function (b) { buttons[b.dataset.sp] = b; });

  // session: the call on the line; waiting: a second call ringing meanwhile (call waiting);
  // held: the first call, on hold while the registrar talks on the second
  var account = null, ua = null, session = null, waiting = null, held = null;
  var localStream = null, micOk = false, muted = false;
  var audioCtx = null, meterTimer = null, ringTimer = null, toneUntil = 0;
  var channel = window.BroadcastChannel ? new BroadcastChannel("mis-softphone") : null;
  // host candidates, plus the clinic's STUN server when Asterisk is behind NAT (account)
  var PC_CONFIG = { iceServers: [] };

  /* ---------------------------------------------------------------- state shown */
  var conn = "starting"; // starting | connected | offline | nomic | second | elsewhere
  function showConn(kind, text) {
    conn = kind;
    stateEl.dataset.state = kind;
    stateEl.textContent = text;
    broadcast();
  }
  function showCall(kind, text, peer) {
    callStateEl.dataset.state = kind;
    callStateEl.textContent = text;
    if (peer !== undefined) peerEl.textContent = peer;
    buttons.dial.disabled = !(conn === "connected" && !session);
    buttons.answer.disabled = !(session && kind === "ringing") && !waiting;
    showSecond();
    buttons.hangup.disabled = !session;
    buttons.mute.disabled = !(session && kind === "talking");
    broadcast();
  }
  function error(text) { errorEl.textContent = text || ""; }
  function who(s) { return s.misPeer || s.remote_identity.display_name || s.remote_identity.uri.user; }
  function showSecond() {
    var text = "";
    if (waiting) {
      text = "Второй входящий звонок: " + who(waiting) + ". «Говорить» — ответить, текущий разговор встанет на удержание.";
    } else if (held) {
      text = "На удержании: " + who(held) + ". Разговор с ним продолжится, когда вы завершите текущий.";
    }
    waitingEl.textContent = text;
    waitingEl.hidden = !text;
  }
  var active = false; // this window is the browser's softphone (holds the lock, see start)
  function broadcast() {
    if (!channel || !active) return;
    channel.postMessage({
      type: "state", conn: conn, conn_text: stateEl.textContent,
      call: callStateEl.dataset.state || "idle", call_text: callStateEl.textContent, peer: peerEl.textContent,
    });
  }
  if (channel) {
    channel.onmessage = function (ev) {
      var msg = ev.data || {};
      if (!active) return;
      if (msg.type === "ping") broadcast();
      if (msg.type === "answer") answer();
    };
  }

  function api(method, path, body) {
    return fetch(path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!resp.ok) {
          var err = new Error(data.error || ("Ошибка " + resp.status));
          err.status = resp.status;
          err.data = data;
          throw err;
        }
        return data;
      });
    });
  }

  /* ---------------------------------------------------------------- devices */
  function fillDevices() {
    return navigator.mediaDevices.enumerateDevices().then(function (list) {
      var notes = [];
      [[micSel, "audioinput", account.mic_device], [speakerSel, "audiooutput", account.speaker_device]]
        .forEach(function (row) {
          var sel = row[0], kind = row[1], saved = row[2];
          var chosen = sel.value || saved;
          while (sel.options.length > 1) sel.remove(1);
          list.filter(function (d) { return d.kind === kind && d.deviceId !== "default" && d.label; })
            .forEach(function (d) {
              var opt = document.createElement("option");
              opt.value = d.label; opt.textContent = d.label; opt.dataset.deviceId = d.deviceId;
              sel.appendChild(opt);
            });
          var found = Array.prototype.some.call(sel.options, function (o) { return o.value === chosen; });
          sel.value = found ? chosen : "";
          if (saved && !found) {
            notes.push("Сохранённое устройство «" + saved + "» не найдено: используется устройство по умолчанию");
          }
        });
      noteEl.textContent = notes.join(". ");
      noteEl.hidden = !notes.length;
    });
  }
  function deviceId(sel) {
    var opt = sel.options[sel.selectedIndex];
    return opt && opt.dataset.deviceId ? opt.dataset.deviceId : "";
  }
  function applySink(audio) {
    var id = deviceId(speakerSel);
    if (!audio.setSinkId) return Promise.resolve();
    return audio.setSinkId(id || "").catch(function () {
      error("Устройство воспроизведения недоступно: звук идёт на устройство по умолчанию");
    });
  }

  function openMic() {
    var id = deviceId(micSel);
    var constraints = { audio: id ? { deviceId: { exact: id } } : true, video: false };
    return navigator.mediaDevices.getUserMedia(constraints).then(function (stream) {
      if (localStream) localStream.getTracks().forEach(function (t) { t.stop(); });
      localStream = stream;
      micOk = true;
      meter(stream);
      return stream;
    }, function (err) {
      micOk = false;
      var why = err && err.name === "NotAllowedError"
        ? "Микрофон недоступен: разрешите доступ к микрофону для этого сайта в настройках браузера"
        : "Микрофон недоступен: подключите гарнитуру или выберите другое записывающее устройство";
      showConn("nomic", why);
      throw err;
    });
  }

  function context() {
    if (!audioCtx) audioCtx = new (window.AudioContext || window.webkitAudioContext)();
    if (audioCtx.state === "suspended") audioCtx.resume().catch(function () {});
    return audioCtx;
  }
  /* The microphone level meter runs only while «Настройки звука» is open in a visible window:
     an audio graph left running keeps the computer's audio service busy all day. */
  var settingsEl = q("sp-settings"), meterSource = null;
  function meter(stream) {
    stopMeter();
    if (!settingsEl.open || document.visibilityState === "hidden" || !stream) return;
    var analyser = context().createAnalyser();
    analyser.fftSize = 1024;
    meterSource = context().createMediaStreamSource(stream);
    meterSource.connect(analyser);
    var data = new Float32Array(analyser.fftSize);
    meterTimer = setInterval(function () {
      analyser.getFloatTimeDomainData(data);
      var sum = 0;
      for (var i = 0; i < data.length; i++) sum += data[i] * data[i];
      var rms = Math.sqrt(sum / data.length);
      levelEl.value = Math.min(1, rms * 4);
      levelEl.dataset.rms = rms.toFixed(4);
    }, 100);
  }
  function stopMeter() {
    if (meterTimer) clearInterval(meterTimer);
    meterTimer = null;
    if (meterSource) { meterSource.disconnect(); meterSource = null; }
    levelEl.value = 0;
    levelEl.dataset.rms = "0";
    quietAudio();
  }
  /* Nothing to play or measure: the audio graph sleeps (it wakes with the next tone or meter). */
  function quietAudio() {
    if (audioCtx && audioCtx.state === "running" && !meterTimer && !ringTimer && !toneUntil) {
      audioCtx.suspend().catch(function () {});
    }
  }
  settingsEl.addEventListener("toggle", function () { meter(localStream); });
  document.addEventListener("visibilitychange", function () { meter(localStream); });

  /* A tone through an <audio> element, so it goes to the chosen playback device (setSinkId). */
  function tone(audio, freq, seconds) {
    var ctx = context();
    var dest = ctx.createMediaStreamDestination();
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.frequency.value = freq;
    gain.gain.value = 0.2;
    osc.connect(gain).connect(dest);
    audio.srcObject = dest.stream;
    osc.start();
    osc.stop(ctx.currentTime + seconds);
    toneUntil = Date.now() + seconds * 1000;
    osc.onended = function () { toneUntil = 0; quietAudio(); };
    return applySink(audio).then(function () { return audio.play(); }).catch(function () {});
  }
  function startRing() {
    stopRing();
    var ring = function () { tone(ringAudio, 425, 1); };
    ring();
    ringTimer = setInterval(ring, 4000);
    ringAudio.dataset.ringing = "1";
  }
  function stopRing() {
    if (ringTimer) clearInterval(ringTimer);
    ringTimer = null;
    ringAudio.pause();
    ringAudio.srcObject = null;
    ringAudio.dataset.ringing = "";
    quietAudio();
  }

  /* ---------------------------------------------------------------- SIP */
  function startUa() {
    if (ua) return;
    var socket = new JsSIP.WebSocketInterface(account.ws_url);
    ua = new JsSIP.UA({
      sockets: [socket], uri: account.uri, password: account.password,
      authorization_user: account.user, display_name: account.display_name,
      register: true, register_expires: 120, session_timers: false,
      user_agent: "mis-telephony softphone",
    });
    ua.on("connecting", function () { if (conn !== "nomic") showConn("starting", "Подключение…"); });
    ua.on("disconnected", function () {
      if (conn !== "nomic" && conn !== "elsewhere") {
        showConn("offline", "Софтфон: нет соединения с АТС, повторяем подключение…");
      }
      if (session) error("Связь с АТС прервалась: разговор мог оборваться. Завершите его и позвоните снова.");
      showCall(session ? callStateEl.dataset.state : "idle", callStateEl.textContent);
    });
    ua.on("registered", function () {
      learnHosts();
      ensureStandby(0);
      if (conn !== "nomic") showConn("connected", "Софтфон подключён");
      error("");
      showCall(session ? callStateEl.dataset.state : "idle", session ? callStateEl.textContent : "Свободна");
    });
    ua.on("unregistered", function () { if (conn === "connected") showConn("offline", "Софтфон: нет соединения"); });
    ua.on("registrationFailed", function (e) {
      showConn("offline", "Софтфон: нет соединения (АТС отклонила регистрацию: " + (e.cause || "ошибка") + ")");
    });
    ua.on("newRTCSession", function (e) {
      if (e.originator !== "remote") return;
      var incoming = e.session;
      dropStandby(); // a call rings here: the line is in use (presence shows it busy)
      if (session && (waiting || held)) {
        incoming.terminate({ status_code: 486, reason_phrase: "Busy Here" }); // two lines at most
        return;
      }
      if (session) {
        // call waiting: the second call is shown, not dropped; «Говорить» takes it
        waiting = incoming;
        wire(incoming, who(incoming), true);
        showCall(callStateEl.dataset.state, callStateEl.textContent);
        return;
      }
      session = incoming;
      wire(incoming, who(incoming), false);
      if (micOk && autoAnswer(e.request)) {
        // the registrar's own click-to-call leg: he has just pressed «Звонок», so it is
        // answered here and now, no ring and no «Говорить» (only with no other call: a
        // second call always rings, see above)
        showCall("answering", "Соединение…", who(incoming));
        var t0 = performance.now();
        incoming.once("accepted", function () {
          answerTimes.push(performance.now() - t0);
          if (answerTimes.length > 100) answerTimes.shift();
        });
        incoming.answer(options());
        return;
      }
      startRing();
      showCall("ringing", "Входящий звонок", who(incoming));
    });
    ua.start();
  }

  /* ari_app marks the registrar's own click-to-call leg with `Call-Info: <…>;answer-after=0`
     (the auto-answer convention of desk phones). Asterisk sends no caller's header on to
     a phone, so only that leg carries it; anything but an immediate answer rings as usual. */
  function autoAnswer(request) {
    var values = request && request.getHeaders ? request.getHeaders("Call-Info") : [];
    return values.some(function (v) { return /;\s*answer-after\s*=\s*0(\s*[;,]|\s*$)/i.test(v); });
  }

  /* The answer (or offer) goes out once ICE has what it needs, not at the end of gathering:
     Chrome reports gathering "complete" only after every interface has been tried (≈150 ms
     on a quiet machine), and the caller waits all that time for the 200 OK. Without a STUN
     server the host candidates are all there is: the SDP leaves as soon as as many host
     candidates as this machine gives (learnt once by a throw-away gathering, see learnHosts)
     are in, or ICE_SETTLE ms after the first one (an interface that came up since: the timer is
     the fallback); with one it waits for the first server-reflexive candidate, which NAT needs. */
  var ICE_SETTLE = 20;
  var hostCandidates = 0; // UDP host candidates of one gathering here (0: not known yet)
  function earlyIce(s) {
    var timer = null, hosts = 0, sent = false;
    var ready = function (e) {
      if (sent) return;
      sent = true;
      if (timer) clearTimeout(timer);
      e.ready();
    };
    s.on("icecandidate", function (e) {
      var stun = PC_CONFIG.iceServers && PC_CONFIG.iceServers.length;
      var c = e.candidate || {};
      if (stun) {
        if (c.type === "srflx" && !timer) timer = setTimeout(function () { ready(e); }, ICE_SETTLE);
        return;
      }
      if (c.type !== "host") return;
      if (c.protocol === "udp") hosts++;
      if (hostCandidates && hosts >= hostCandidates) ready(e);
      else if (!timer) timer = setTimeout(function () { ready(e); }, ICE_SETTLE);
    });
  }
  /* How many UDP host candidates a gathering yields on this machine: one throw-away peer
     connection when the window starts (and at each registration: a network change comes with
     a reconnect). It also warms the browser's WebRTC stack up, so the first call's answer does
     not pay for that. */
  function learnHosts() {
    if (!window.RTCPeerConnection || (PC_CONFIG.iceServers && PC_CONFIG.iceServers.length)) return;
    var pc = new RTCPeerConnection(PC_CONFIG), n = 0;
    var done = setTimeout(function () { pc.close(); }, 5000);
    pc.onicecandidate = function (ev) {
      if (ev.candidate) {
        if (ev.candidate.type === "host" && ev.candidate.protocol === "udp") n++;
        return;
      }
      clearTimeout(done);
      pc.close();
      hostCandidates = n;
    };
    pc.addTransceiver("audio");
    pc.createOffer().then(function (offer) { return pc.setLocalDescription(offer); }).catch(function () { pc.close(); });
  }

  /* ---------------------------------------------------------------- standby line
     An idle window keeps one call of its own open to Asterisk (account.standby_uri): ari_app
     answers and holds it (ari_app/standby), so its WebRTC session (ICE, DTLS) is built before
     anyone needs it, and no audio goes either way. The registrar's «Звонок» takes the line as
     his leg, already up, so the patient is dialled at once instead of after this browser's
     WebRTC set-up. Asterisk then sends the connected line (an UPDATE with
     P-Asserted-Identity): the line becomes this window's call and the microphone goes on.
     The line is hung up when another call rings here or is dialled from here, and opened
     again once the window is idle; a refused line is asked for again later and later. */
  var standby = null, standbyTimer = null, standbyFailures = 0, standbyOn = true;
  function idle() { return !session && !waiting && !held; }
  function ensureStandby(delay) {
    if (standbyTimer || standby || !standbyOn || !account || !account.standby_uri) return;
    standbyTimer = setTimeout(function () {
      standbyTimer = null;
      if (standby || !idle() || !micOk || !ua || !ua.isRegistered()) return;
      openStandby();
    }, delay);
  }
  function openStandby() {
    var s;
    try {
      s = ua.call(account.standby_uri, options());
    } catch (e) {
      standbyFailures++;
      ensureStandby(retryDelay());
      return;
    }
    standby = s;
    var upAt = 0; // its remote audio is played only once it is taken (playRemote)
    s.on("confirmed", function () {
      upAt = Date.now();
      if (s !== standby) return;
      sendAudio(s, false);
      // a line whose media path does not come up (or breaks) is no line: «Звонок» would take
      // a leg nobody can hear on; hang it up and open another
      var pc = s.connection;
      var broken = function () {
        if (s !== standby) return;
        if (pc.connectionState === "connected") { standbyFailures = 0; return; }
        if (pc.connectionState === "failed" || pc.connectionState === "closed" || Date.now() - upAt >= MEDIA_WAIT) {
          dropStandby();
          standbyFailures++;
          ensureStandby(retryDelay());
        }
      };
      pc.addEventListener("connectionstatechange", broken);
      setTimeout(broken, MEDIA_WAIT);
    });
    s.on("update", function (e) { taken(s, e.request); });
    s.on("reinvite", function (e) { taken(s, e.request); });
    var gone = function () {
      if (s !== standby) return; // taken by a call: the call's own handlers end it
      standby = null;
      // a line refused, or hung up soon after it came, is asked for again later and later
      standbyFailures = upAt && Date.now() - upAt > STANDBY_STEADY ? 0 : standbyFailures + 1;
      ensureStandby(retryDelay());
    };
    s.on("ended", gone);
    s.on("failed", gone);
  }
  var STANDBY_STEADY = 1000; // ms a line must have lasted for its end not to count as a failure
  var MEDIA_WAIT = 10000; // ms an answered line's media path (ICE, DTLS) may take to connect
  function retryDelay() { return standbyFailures ? Math.min(30000, 1000 * Math.pow(2, standbyFailures - 1)) : 0; }
  function dropStandby() {
    if (standbyTimer) { clearTimeout(standbyTimer); standbyTimer = null; }
    var s = standby;
    standby = null;
    if (s) { try { s.terminate(); } catch (e) { /* ended meanwhile */ } }
  }
  /* An UPDATE (or re-INVITE) carrying the connected line: on the standby line, «Звонок» has
     taken it; on the call in progress, the party changed (a transfer). */
  function taken(s, request) {
    var peer = identity(request);
    if (!peer) return;
    s.misPeer = peer; // a standby line's own far end is «mis-standby»: the party is this
    if (s === standby) {
      standby = null;
      if (!idle()) { s.terminate(); return; }
      session = s;
      wire(s, peer, false);
      sendAudio(s, true);
      playRemote(s.connection);
      showCall("talking", "Разговор", peer);
    } else if (s === session) {
      peerEl.textContent = peer;
      broadcast();
    }
  }
  function identity(request) {
    var raw = request ? request.getHeader("P-Asserted-Identity") || request.getHeader("Remote-Party-ID") : "";
    if (!raw) return "";
    var parsed = JsSIP.NameAddrHeader.parse(raw);
    if (!parsed) return "";
    return parsed.display_name || (parsed.uri && parsed.uri.user) || "";
  }
  /* The microphone on a line's sender, or nothing at all (no packets: not silence). */
  function sendAudio(s, on) {
    var pc = s.connection;
    if (!pc) return;
    var track = on && localStream ? localStream.getAudioTracks()[0] || null : null;
    pc.getSenders().forEach(function (sender) {
      if (sender.track !== track) sender.replaceTrack(track).catch(function () {});
    });
  }
  function playRemote(pc) {
    var receiver = pc && pc.getReceivers()[0];
    if (!receiver || !receiver.track) return;
    remoteAudio.srcObject = new MediaStream([receiver.track]);
    applySink(remoteAudio).then(function () { return remoteAudio.play(); }).catch(function () {});
  }

  function wire(s, name, isWaiting) {
    earlyIce(s);
    s.on("peerconnection", function (e) { attachRemote(e.peerconnection); });
    if (s.connection) attachRemote(s.connection);
    s.on("progress", function () { if (s === session && s.direction === "outgoing") showCall("calling", "Вызов…"); });
    s.on("accepted", function () {
      if (s !== session) return;
      stopRing();
      showCall("talking", "Разговор", name);
    });
    s.on("hold", function () { if (s === session) showCall("held", "Удержание"); });
    s.on("unhold", function () { if (s === session) showCall("talking", "Разговор"); });
    var end = function (e) {
      if (s === waiting || s === held) {
        if (s === waiting) waiting = null; else held = null;
        if (s === waiting && session && callStateEl.dataset.state !== "ringing") stopRing();
        showCall(callStateEl.dataset.state, callStateEl.textContent);
        return;
      }
      if (s !== session) return;
      stopRing();
      session = null;
      muted = false;
      buttons.mute.setAttribute("aria-pressed", "false");
      buttons.mute.textContent = "Выключить микрофон";
      var cause = e && e.cause && e.cause !== JsSIP.C.causes.BYE && e.cause !== JsSIP.C.causes.CANCELED
        ? " (" + causeText(e.cause) + ")" : "";
      if (held) {
        // the call on hold comes back to the line
        session = held;
        held = null;
        session.unhold();
        showCall("talking", "Разговор", who(session));
        return;
      }
      if (waiting) {
        session = waiting;
        waiting = null;
        startRing();
        showCall("ringing", "Входящий звонок", who(session));
        return;
      }
      showCall("idle", "Свободна" + cause, "");
      ensureStandby(0);
    };
    s.on("ended", end);
    s.on("failed", end);
    if (isWaiting) startRing();
  }

  function causeText(cause) {
    var c = JsSIP.C.causes;
    var map = {};
    map[c.BUSY] = "занято"; map[c.REJECTED] = "отклонён"; map[c.NOT_FOUND] = "номер не найден";
    map[c.UNAVAILABLE] = "недоступен"; map[c.NO_ANSWER] = "нет ответа";
    map[c.USER_DENIED_MEDIA_ACCESS] = "нет доступа к микрофону"; map[c.CONNECTION_ERROR] = "нет связи с АТС";
    map[c.REQUEST_TIMEOUT] = "нет ответа АТС"; map[c.ADDRESS_INCOMPLETE] = "неполный номер";
    return map[cause] || cause;
  }

  function attachRemote(pc) {
    pc.addEventListener("track", function (ev) {
      var stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      remoteAudio.srcObject = stream;
      applySink(remoteAudio).then(function () { return remoteAudio.play(); }).catch(function () {});
    });
  }

  function options() {
    return {
      mediaStream: localStream, pcConfig: PC_CONFIG,
      mediaConstraints: { audio: true, video: false }, rtcOfferConstraints: { offerToReceiveAudio: true },
    };
  }

  function answer() {
    error("");
    if (!micOk) { error("Микрофон недоступен: ответить нельзя"); return; }
    if (waiting) {
      var next = waiting;
      waiting = null;
      stopRing();
      if (session && session.isEstablished()) {
        session.hold(); // the first caller hears Asterisk's music on hold
        held = session;
      } else if (session) {
        session.terminate();
      }
      session = next;
      next.answer(options());
      showCall("answering", "Соединение…", who(next));
      return;
    }
    if (session && callStateEl.dataset.state === "ringing") {
      stopRing();
      session.answer(options());
    }
  }

  function dial() {
    error("");
    var target = numberEl.value.replace(/[\s()-]/g, "");
    if (!/^\+?[0-9*#]{2,20}$/.test(target)) { error("Введите добавочный или номер телефона (только цифры)"); return; }
    if (!micOk) { error("Микрофон недоступен: позвонить нельзя"); return; }
    if (!ua || !ua.isRegistered()) { error("Софтфон не подключён к АТС"); return; }
    var host = account.uri.split("@")[1];
    dropStandby(); // this call uses the line (presence shows it busy)
    var s = ua.call("sip:" + target + "@" + host, options());
    session = s;
    wire(s, target, false);
    showCall("calling", "Вызов…", target);
  }

  /* ---------------------------------------------------------------- buttons */
  buttons.dial.addEventListener("click", dial);
  buttons.answer.addEventListener("click", answer);
  buttons.hangup.addEventListener("click", function () {
    if (session) session.terminate();
  });
  buttons.mute.addEventListener("click", function () {
    if (!session) return;
    muted = !muted;
    if (muted) session.mute({ audio: true }); else session.unmute({ audio: true });
    buttons.mute.setAttribute("aria-pressed", muted ? "true" : "false");
    buttons.mute.textContent = muted ? "Включить микрофон" : "Выключить микрофон";
  });
  root.querySelectorAll("[data-sp-key]").forEach(function (b) {
    b.addEventListener("click", function () {
      var key = b.dataset.spKey;
      if (session && session.isEstablished()) {
        session.sendDTMF(key, { transportType: "RFC2833", duration: 160 });
      } else {
        numberEl.value += key;
      }
    });
  });
  numberEl.addEventListener("keydown", function (ev) { if (ev.key === "Enter") dial(); });
  buttons["test-sound"].addEventListener("click", function () {
    settingsMsg.textContent = "Звучит проверочный сигнал (1 секунда)";
    tone(ringAudio, 440, 1);
  });
  buttons["save-devices"].addEventListener("click", function () {
    api("POST", "/phone/api/softphone/devices", { mic_device: micSel.value, speaker_device: speakerSel.value })
      .then(function (data) {
        account.mic_device = data.mic_device;
        account.speaker_device = data.speaker_device;
        noteEl.hidden = true;
        settingsMsg.textContent = "Устройства сохранены";
      }, function (err) { settingsMsg.textContent = err.message; });
  });
  micSel.addEventListener("change", function () {
    openMic().then(function (stream) {
      if (conn === "nomic" && active && account) { showConn("starting", "Подключение…"); register(); }
      // a call in progress switches to the new microphone without a re-INVITE
      if (session && session.connection) {
        var track = stream.getAudioTracks()[0];
        session.connection.getSenders().forEach(function (sender) {
          if (sender.track && sender.track.kind === "audio") sender.replaceTrack(track);
        });
      }
    }).catch(function () {});
  });
  speakerSel.addEventListener("change", function () { applySink(remoteAudio); });
  navigator.mediaDevices && navigator.mediaDevices.addEventListener &&
    navigator.mediaDevices.addEventListener("devicechange", function () { if (account) fillDevices(); });

  // Closing the window during a call asks first; closing it anyway ends the call and the
  // registration, so Asterisk keeps no channel of ours.
  window.addEventListener("beforeunload", function (ev) {
    if (session) { ev.preventDefault(); ev.returnValue = ""; }
  });
  window.addEventListener("pagehide", function () {
    if (ua) ua.stop();
    releaseLease();
  });

  /* ms from an auto-answered INVITE to this window's 200 OK (the last 100): the browser's own
     share of a click-to-call's set-up, for support and bench/softphone.py. */
  var answerTimes = [];
  window.misSoftphoneAnswerTimes = function () { return answerTimes.slice(); };
  /* Whether the standby line is up and waiting, its media path (ICE, DTLS) connected
     (support and tests). */
  window.misSoftphoneStandby = function () {
    return !!(standby && standby.isEstablished() && standby.connection
      && standby.connection.connectionState === "connected");
  };
  window.misSoftphoneStandbyState = function () {
    if (!standby) return standbyTimer ? "waiting (" + standbyFailures + " failures)" : "none";
    var pc = standby.connection;
    return (standby.isEstablished() ? "established" : "setting up") + ", media "
      + (pc ? pc.connectionState + "/" + pc.iceConnectionState : "none");
  };
  /* Support: this window without (false) or with its standby line again (true): every
     «Звонок» then rings the window's own leg, answered by itself. */
  window.misSoftphoneUseStandby = function (on) {
    standbyOn = !!on;
    if (standbyOn) ensureStandby(0); else dropStandby();
  };

  /* Media counters of the call in progress (WebRTC getStats), for a support check and the
     tests: audio energy received and packets each way; null without a call. */
  window.misSoftphoneStats = function () {
    if (!session || !session.connection) return Promise.resolve(null);
    return session.connection.getStats().then(function (report) {
      var out = { inEnergy: 0, inPackets: 0, outPackets: 0, codec: "" };
      report.forEach(function (r) {
        if (r.type === "inbound-rtp" && r.kind === "audio") {
          out.inEnergy = r.totalAudioEnergy || 0; out.inPackets = r.packetsReceived || 0;
          var codec = report.get(r.codecId);
          if (codec) out.codec = codec.mimeType;
        }
        if (r.type === "outbound-rtp" && r.kind === "audio") out.outPackets = r.packetsSent || 0;
      });
      return out;
    });
  };

  /* ---------------------------------------------------------------- start */
  showCall("idle", "Свободна", "");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showConn("nomic", "Микрофон недоступен: браузер разрешает его только на защищённой странице (https)");
    return;
  }
  function start() {
    active = true;
    showConn("starting", "Подключение…");
    api("GET", "/phone/api/softphone").then(function (data) {
      account = data;
      PC_CONFIG = { iceServers: data.ice_servers || [] };
      // one DTLS certificate for the window's calls, made now: not one per call at answer time
      if (window.RTCPeerConnection && RTCPeerConnection.generateCertificate) {
        RTCPeerConnection.generateCertificate({ name: "ECDSA", namedCurve: "P-256" })
          .then(function (cert) { PC_CONFIG.certificates = [cert]; }, function () {});
      }
      // labels appear only after the first permission: ask, then list, then open the chosen one
      return openMic().then(fillDevices).then(function () {
        if (deviceId(micSel)) return openMic();
        return null;
      }).then(register);
    }).catch(function (err) {
      if (conn !== "nomic") showConn("offline", err.message || "Софтфон: нет соединения");
    });
  }
  /* With a microphone: take this user's lease (below), then register. */
  function register() {
    return lease().then(function (granted) { holdLease(granted); startUa(); }, waitForLease);
  }

  /* One computer at a time: the user's softphone keeps one registration in Asterisk, so two
     computers (two browsers) logged in as the same user would take it from each other at each
     renewal. A window registers only while it holds the user's lease on the server (renewed
     every renew_s); another computer's window says so and asks again every LEASE_RETRY ms,
     taking over when the first closes (it releases) or stops renewing (lapsed). The id is
     this browser's (kept in localStorage): a reloaded window takes its own lease back at
     once, and within one browser the Web Lock below keeps it to one window. */
  var instance = (function () {
    var key = "mis-softphone-instance", id = null;
    try { id = localStorage.getItem(key); } catch (e) { id = null; }
    if (!id || !/^[0-9A-Za-z-]{8,64}$/.test(id)) {
      id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
        : (Date.now().toString(36) + Math.random().toString(36).slice(2));
      try { localStorage.setItem(key, id); } catch (e) { /* private mode: per window */ }
    }
    return id;
  })();
  var leaseTimer = null, LEASE_RETRY = 5000;
  function lease() { return api("POST", "/phone/api/softphone/lease", { instance: instance }); }
  function holdLease(granted) {
    if (leaseTimer) clearInterval(leaseTimer);
    leaseTimer = setInterval(function () {
      lease().catch(function (err) {
        if (err.data && err.data.elsewhere) lostLease(err.message); // a network error keeps us on
      });
    }, (granted.renew_s || 15) * 1000);
  }
  function waitForLease(err) {
    if (err.data && err.data.elsewhere) showConn("elsewhere", err.message);
    else if (conn !== "nomic") showConn("offline", err.message || "Софтфон: нет соединения");
    setTimeout(function () {
      lease().then(function (granted) {
        showConn("starting", "Подключение…");
        holdLease(granted);
        startUa();
      }, waitForLease);
    }, LEASE_RETRY);
  }
  function lostLease(message) {
    if (leaseTimer) clearInterval(leaseTimer);
    leaseTimer = null;
    if (ua) { ua.stop(); ua = null; }
    waitForLease({ message: message, data: { elsewhere: true } });
  }
  function releaseLease() {
    if (!leaseTimer) return;
    clearInterval(leaseTimer);
    leaseTimer = null;
    fetch("/phone/api/softphone/release", {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ instance: instance }),
    }).catch(function () {});
  }
  /* One softphone per browser: a second window (another tab, a reopened popup) waits on the
     lock the first holds for its lifetime, says so, and takes over when that one closes.
     Two windows registered at once would take the user's one registration from each other. */
  var forever = function () { return new Promise(function () {}); };
  if (!navigator.locks) {
    start();
  } else {
    navigator.locks.request("mis-softphone", { ifAvailable: true }, function (lock) {
      if (lock) { start(); return forever(); }
      showConn("second", "Софтфон уже открыт в другом окне этого браузера: разговаривайте там. "
               + "Это окно подключится само, когда то закроется.");
      navigator.locks.request("mis-softphone", function () { start(); return forever(); });
      return null;
    });
  }
})();
