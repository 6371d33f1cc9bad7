// «Планировщик записи на прием»: the board fills the window and opens at the current time or
// the first appointment; right click on an appointment opens its menu; «Новый прием» finds
// patients while the registrar types. Every action also works as a plain HTML form.
"use strict";

function fitBoard(box) {
  // The board scrolls inside its own box: as tall as the rest of the window, so the page
  // itself never scrolls and the doctors' names stay in view.
  const fit = () => {
    const top = box.getBoundingClientRect().top + window.scrollY;
    // what the page has under the board (its bottom padding) stays on the screen too
    const below = document.documentElement.scrollHeight - (top + box.offsetHeight);
    box.style.maxHeight = Math.max(256, window.innerHeight - top - Math.max(below, 0) - 8) + "px";
  };
  fit();
  window.addEventListener("resize", fit);
}

function openAtWork(box) {
  if (location.hash) {
    const target = document.getElementById(location.hash.slice(1));
    if (target && box.contains(target)) {
      target.scrollIntoView({ block: "center", inline: "center" });
      return;
    }
  }
  const first = box.querySelector(".board-time.is-now") || box.querySelector("[data-appointment-id]");
  if (!first) return;
  const header = box.querySelector(".board-corner");
  const offset = first.getBoundingClientRect().top - box.getBoundingClientRect().top;
  // a little of what came before stays in view above it
  box.scrollTop += offset - (header ? header.offsetHeight : 0) - 48;
}

function initAppointmentMenus(box) {
  const closeOthers = (keep) => document.querySelectorAll("details[data-row-menu][open]")
    .forEach((d) => { if (d !== keep) d.open = false; });
  box.addEventListener("contextmenu", (event) => {
    const appointment = event.target.closest("[data-appointment-id]");
    const menu = appointment && appointment.querySelector("details[data-row-menu]");
    if (!menu) return;
    event.preventDefault();
    closeOthers(menu);
    menu.open = true;
    const first = menu.querySelector("[role=menuitem]");
    if (first) first.focus();
  });
}

// Drag an appointment onto a free slot: the same POST as «Перенести» (the server checks it and
// answers with its message); the menu's «Перенести» does the same without a mouse.
function initDragToMove(box) {
  let dragged = null;
  box.addEventListener("dragstart", (event) => {
    dragged = event.target.closest && event.target.closest("[data-move-url]");
    if (!dragged) return;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", dragged.dataset.appointmentId);
    // after this event: Chromium cancels a drag whose source changes while it starts
    setTimeout(() => { if (dragged) box.classList.add("is-dragging"); }, 0);
  });
  box.addEventListener("dragend", () => {
    dragged = null;
    box.classList.remove("is-dragging");
    box.querySelectorAll(".drop-here").forEach((el) => el.classList.remove("drop-here"));
  });
  const slotOf = (event) => {
    const cell = event.target.closest && event.target.closest(".board-slot");
    return cell && cell.querySelector("[data-testid=free-slot]") ? cell : null;
  };
  box.addEventListener("dragover", (event) => {
    const cell = dragged && slotOf(event);
    if (!cell) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    box.querySelectorAll(".drop-here").forEach((el) => { if (el !== cell) el.classList.remove("drop-here"); });
    cell.classList.add("drop-here");
  });
  box.addEventListener("drop", (event) => {
    const cell = dragged && slotOf(event);
    if (!cell) return;
    event.preventDefault();
    const slot = cell.querySelector("[data-testid=free-slot]");
    const form = document.createElement("form");
    form.method = "post";
    form.action = dragged.dataset.moveUrl;
    const fields = {
      csrf_token: box.dataset.csrf,
      doctor_id: slot.dataset.doctorId,
      date: box.dataset.day,
      time: slot.dataset.slot,
      cabinet_id: dragged.dataset.cabinetId,
      back_doctor: box.dataset.backDoctor,
    };
    for (const [name, value] of Object.entries(fields)) {
      const input = document.createElement("input");
      Object.assign(input, { type: "hidden", name, value: value || "" });
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  });
}

function renderPatients(container, patients, chosen) {
  container.replaceChildren();
  if (!patients.length) {
    const none = document.createElement("p");
    none.className = "hint";
    none.textContent = "Пациенты не найдены";
    container.append(none);
    return;
  }
  for (const p of patients) {
    const label = document.createElement("label");
    label.className = "patient-option";
    const radio = document.createElement("input");
    Object.assign(radio, { type: "radio", name: "patient_id", value: String(p.id), required: true });
    radio.checked = String(p.id) === chosen || patients.length === 1;
    const name = document.createElement("span");
    name.className = "one-line";
    name.textContent = p.name;
    const more = document.createElement("span");
    more.className = "muted small";
    more.textContent = [p.birth_date, p.phone].filter(Boolean).join(" ");
    label.append(radio, name, " ", more);
    container.append(label);
  }
}

function initPatientSearch(box) {
  const input = box.querySelector("[data-patient-query]");
  const results = box.querySelector("[data-patient-results]");
  let timer = null;
  let asked = 0;
  const search = async () => {
    const query = input.value.trim();
    const checked = results.querySelector("input[name=patient_id]:checked");
    const chosen = checked ? checked.value : "";
    if (query.length < 2) return;
    const mine = ++asked;
    const response = await fetch(box.dataset.searchUrl + "?q=" + encodeURIComponent(query),
      { headers: { Accept: "application/json" } });
    if (!response.ok || mine !== asked) return;  // a later keystroke already asked again
    renderPatients(results, (await response.json()).patients, chosen);
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); search(); }
  });
}

function initServiceDuration(form) {
  const service = form.querySelector("select[name=service_id]");
  const duration = form.querySelector("input[name=duration_min]");
  if (!service || !duration) return;
  const show = () => {
    const option = service.selectedOptions[0];
    duration.placeholder = option && option.dataset.duration ? option.dataset.duration + " (по услуге)" : "по услуге";
  };
  service.addEventListener("change", show);
  show();
}

// F9 is «Новый прием», as in the manual's menu.
function initShortcuts() {
  document.addEventListener("keydown", (event) => {
    if (event.key !== "F9" || event.altKey || event.ctrlKey || event.metaKey) return;
    const button = document.querySelector("[data-testid=new-appointment]");
    if (!button) return;
    event.preventDefault();
    button.click();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  initShortcuts();
  const box = document.querySelector(".board-scroll");
  if (box) {
    fitBoard(box);
    openAtWork(box);
    initAppointmentMenus(box);
    initDragToMove(box);
  }
  document.querySelectorAll("[data-patient-pick]").forEach(initPatientSearch);
  document.querySelectorAll("form[data-once]").forEach((form) => {
    initServiceDuration(form);
    // One click, one appointment: the button stays pressed until the answer comes.
    form.addEventListener("submit", (event) => {
      if (event.submitter && event.submitter.getAttribute("formmethod") === "get") return;
      form.querySelectorAll("button[type=submit]").forEach((b) => { b.disabled = true; });
    });
  });
  // Back from the next page: the form is usable again.
  window.addEventListener("pageshow", () => {
    document.querySelectorAll("form[data-once] button[type=submit]").forEach((b) => { b.disabled = false; });
  });
});
