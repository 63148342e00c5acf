// Progressive enhancement for the webhook URLs: a Copy button beside each (the URLs stay
// selectable without it). Served from the pages' own origin: the CSP allows no inline script.
document.querySelectorAll("button.copy").forEach(function (button) {
  var field = document.getElementById(button.dataset.copy);
  if (!field || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = "Copied";
    });
  });
});
