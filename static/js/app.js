// Behaviour shared by every page; no inline scripts anywhere (the Content-Security-Policy forbids them).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // The phone-width menu opens and closes with its button.
  const toggle = document.querySelector(".menu-toggle");
  const menu = document.getElementById("site-menu");
  if (toggle && menu) {
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      menu.classList.toggle("open", open);
    });
  }
});

// Forms marked data-confirm ask before they submit (delete, revoke, kill switch).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A table wider than its box scrolls inside it; a box that scrolls must be reachable from the keyboard and named
// (after its section's heading) so its hidden columns can be reached without a mouse. Boxes that fit stay out of
// the tab order.
function markScrollBoxes() {
  document.querySelectorAll(".table-wrap, .report-sections .scroll").forEach((box) => {
    if (box.scrollWidth > box.clientWidth || box.scrollHeight > box.clientHeight) {
      const heading = box.closest("section, article, details")?.querySelector("h2, h3, summary");
      box.setAttribute("tabindex", "0");
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", heading ? heading.textContent.trim() : "Table");
    } else if (box.getAttribute("tabindex") === "0") {
      ["tabindex", "role", "aria-label"].forEach((name) => box.removeAttribute(name));
    }
  });
}

document.addEventListener("DOMContentLoaded", markScrollBoxes);
window.addEventListener("resize", markScrollBoxes);
document.addEventListener("htmx:afterSettle", markScrollBoxes);
