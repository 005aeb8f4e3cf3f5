// "Add a version": copies the formset's empty row (prefix __prefix__) with
// the next row number and counts it in the management form, as Django's
// admin does for inline formsets.
(function () {
  var button = document.getElementById("add-version");
  var template = document.getElementById("version-empty-row");
  var rows = document.getElementById("version-rows");
  var total = document.getElementById("id_versions-TOTAL_FORMS");
  if (!button || !template || !rows || !total) return;
  button.addEventListener("click", function () {
    var index = parseInt(total.value, 10) || 0;
    rows.insertAdjacentHTML("beforeend", template.innerHTML.replace(/__prefix__/g, String(index)));
    total.value = String(index + 1);
    var first = rows.lastElementChild && rows.lastElementChild.querySelector("input[type=number]");
    if (first) first.focus();
  });
})();
