// Swagger UI for /openapi.json, from the files of the swagger-ui-bundle-v2 package (no CDN; the page's
// Content-Security-Policy allows no inline script, hence this file).
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
  });
});
