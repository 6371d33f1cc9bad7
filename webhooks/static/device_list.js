/* «Записывающее устройство» / «Устройство воспроизведения» in the user form: suggest this
   computer's audio devices by label (labels are listed only once the site may use the
   microphone; without that the fields stay plain text). */
(function () {
  "use strict";
  var fields = document.querySelectorAll("[data-device-list]");
  if (!fields.length || !navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  navigator.mediaDevices.enumerateDevices().then(function (devices) {
    fields.forEach(function (input) {
      var list = document.getElementById(input.getAttribute("list"));
      if (!list) return;
      devices.filter(function (d) { return d.kind === input.dataset.deviceList && d.label && d.deviceId !== "default"; })
        .forEach(function (d) {
          var opt = document.createElement("option");
          opt.value = d.label;
          list.appendChild(opt);
        });
    });
  }).catch(function () {});
})();
