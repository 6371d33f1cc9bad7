// PBX console editor: a paste past the template size limit is stopped here, in words, and the
// text stays in the editor (the server would refuse it too, or not even read a body that big).
(function () {
  "use strict";
  function init() {
    var form = document.querySelector("[data-testid=pbx-editor-form]");
    if (!form) return;
    var limit = parseInt(form.getAttribute("data-max-kb"), 10) * 1024;
    var text = form.querySelector("textarea[name=text]");
    var out = form.querySelector("[data-testid=pbx-size-error]");
    function tooBig() {
      var size = new Blob([text.value]).size;
      if (size <= limit) { out.hidden = true; return false; }
      out.textContent = "Шаблон слишком большой: " + Math.round(size / 1024) + " КБ, допустимо не больше " +
        (limit / 1024) + " КБ. Ничего не отправлено; проверьте, что вставлен нужный текст.";
      out.hidden = false;
      return true;
    }
    text.addEventListener("input", tooBig);
    form.addEventListener("submit", function (ev) { if (tooBig()) ev.preventDefault(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
