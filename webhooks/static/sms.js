// SMS pages: the dialog's live balance, part counter and single-submit guard, the template editor's placeholder
// picker and live preview, and the mailing page's refresh while it is being sent.
"use strict";

(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function postJson(url, payload) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(payload),
    }).then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))));
  }

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  function initBalance(span) {
    const load = () => {
      span.textContent = "…";
      fetch(span.dataset.balanceUrl, { credentials: "same-origin" })
        .then((r) => r.json())
        .then((data) => { span.textContent = data.error ? data.error : data.balance + " ₽"; span.dataset.loaded = "1"; })
        .catch(() => { span.textContent = "нет связи с сервером"; });
    };
    load();
    setInterval(load, 30000);
    document.querySelectorAll("[data-balance-refresh]").forEach((b) => b.addEventListener("click", load));
  }

  function initCounter(area) {
    const out = document.querySelector("[data-sms-counter]");
    const update = debounce(() => {
      postJson(area.dataset.countUrl, { text: area.value }).then((d) => {
        out.textContent = d.chars + " символов, СМС: " + d.parts + (d.too_long ? " — слишком длинно" : "");
      }).catch(() => {});
    }, 200);
    area.addEventListener("input", update);
  }

  // One dialog, one SMS: a second click while the first request is on its way is ignored,
  // and «Отправить повторно» stays off until the registrar ticks the repeat box.
  function initSendForm(form) {
    const submit = form.querySelector("[data-sms-submit]");
    const repeat = form.querySelector("[data-sms-repeat]");
    if (repeat && submit) {
      const sync = () => { submit.disabled = !repeat.checked; };
      repeat.addEventListener("change", sync);
      sync();
    }
    form.addEventListener("submit", (event) => {
      if (form.dataset.busy) { event.preventDefault(); return; }
      form.dataset.busy = "1";
      if (submit) { submit.disabled = true; submit.textContent = "Отправляется…"; }
    });
  }

  function initTemplateEditor(form) {
    const body = form.querySelector("[data-template-body]");
    const text = form.querySelector("[data-preview-text]");
    const count = form.querySelector("[data-preview-count]");
    const problems = form.querySelector("[data-preview-problems]");
    const refresh = debounce(() => {
      postJson(form.dataset.previewUrl, { body: body.value }).then((d) => {
        text.textContent = d.text;
        count.textContent = d.chars + " символов, СМС: " + d.parts + (d.too_long ? " — слишком длинно" : "");
        problems.textContent = d.problems.join("; ");
      }).catch(() => {});
    }, 200);
    body.addEventListener("input", refresh);
    form.querySelectorAll("[data-insert]").forEach((button) => {
      button.addEventListener("click", () => {
        const token = button.dataset.insert;
        const start = body.selectionStart ?? body.value.length;
        const end = body.selectionEnd ?? body.value.length;
        body.value = body.value.slice(0, start) + token + body.value.slice(end);
        body.focus();
        body.selectionStart = body.selectionEnd = start + token.length;
        refresh();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-balance-url]").forEach(initBalance);
    document.querySelectorAll("[data-sms-text]").forEach(initCounter);
    document.querySelectorAll("form[data-preview-url]").forEach(initTemplateEditor);
    document.querySelectorAll("form[data-sms-form]").forEach(initSendForm);
    document.querySelectorAll("[data-autorefresh]").forEach((el) => {
      setTimeout(() => window.location.reload(), 1000 * Number(el.dataset.autorefresh || 3));
    });
  });
})();
