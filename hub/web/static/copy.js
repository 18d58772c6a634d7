/* Copy buttons on the company page: shown only when the browser can copy (the page reads
   the same without them); each copies the text of the element its data-copy names. */
(function () {
  "use strict";
  if (!navigator.clipboard) { return; }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var label = button.firstChild.nodeValue;
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) { return; }
      navigator.clipboard.writeText(target.textContent.trim()).then(function () {
        button.firstChild.nodeValue = "Copied";
        window.setTimeout(function () { button.firstChild.nodeValue = label; }, 2000);
      });
    });
  });
}());
