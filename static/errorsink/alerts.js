// The alert form shows only the fields of the chosen condition (all are in the page, so the
// form works without this script too).
for (const select of document.querySelectorAll("select[data-alert-type]")) {
  const form = select.form;
  const show = () => {
    for (const group of form.querySelectorAll(".alert-fields")) {
      group.hidden = !group.dataset.for.split(" ").includes(select.value);
    }
  };
  select.addEventListener("change", show);
  show();
}
