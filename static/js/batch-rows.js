// Add and remove language rows in the page; without this script the same buttons work through the server.
(function () {
  const form = document.getElementById("batch-form");
  if (!form) return;
  const body = document.getElementById("batch-rows");
  const template = document.getElementById("batch-row-template");
  const total = form.querySelector('input[name="rows-TOTAL_FORMS"]');

  function renumber() {
    const rows = body.querySelectorAll("tr.batch-row");
    rows.forEach((row, index) => {
      row.querySelectorAll("[name], [id], [for]").forEach((element) => {
        for (const attribute of ["name", "id", "for"]) {
          const value = element.getAttribute(attribute);
          if (value) element.setAttribute(attribute, value.replace(/rows-(\d+|__prefix__)-/, `rows-${index}-`));
        }
      });
      row.querySelector(".remove-row").value = index;
    });
    total.value = rows.length;
  }

  document.getElementById("add-row").addEventListener("click", (event) => {
    event.preventDefault();
    body.appendChild(template.content.firstElementChild.cloneNode(true));
    renumber();
    body.lastElementChild.querySelector("select").focus();
  });

  body.addEventListener("click", (event) => {
    const button = event.target.closest(".remove-row");
    if (!button) return;
    event.preventDefault();
    if (body.querySelectorAll("tr.batch-row").length > 1) {
      button.closest("tr").remove();
      renumber();
    }
  });
})();
