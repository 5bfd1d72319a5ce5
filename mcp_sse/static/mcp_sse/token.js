// The one-time token page: select the token on focus and copy it with one click.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-mcp-token]").forEach(function (input) {
    input.addEventListener("focus", function () { input.select(); });
  });
  document.querySelectorAll("[data-mcp-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.getAttribute("data-mcp-copy"));
      var status = button.parentNode.querySelector(".mcp-copied");
      function done(text) { if (status) { status.textContent = text; } }
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(
          function () { done("Copied."); },
          function () { done("Press Ctrl+C to copy."); }
        );
      } else {
        // Plain-http admin pages have no async clipboard API.
        done(document.execCommand("copy") ? "Copied." : "Press Ctrl+C to copy.");
      }
    });
  });
});
