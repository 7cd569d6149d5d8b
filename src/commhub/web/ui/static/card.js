// The client card: older timeline pages load as the operator scrolls; the SMS form
// shows the encoding and segment count as the text is typed.
"use strict";

(function () {
  const timeline = document.getElementById("timeline");
  const strings = window.commhub ? window.commhub.strings : {};
  let loading = false;

  async function loadMore(marker) {
    if (loading) return;
    loading = true;
    const url = marker.dataset.next;
    marker.textContent = strings.loading || "…";
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) throw new Error(String(response.status));
      const holder = document.createElement("template");
      holder.innerHTML = await response.text();  // our own server-rendered, escaped fragment
      marker.replaceWith(holder.content);
      watch();
    } catch (error) {
      marker.textContent = strings.load_failed || "…";
      setTimeout(() => { loading = false; loadMore(marker); }, 3000);
      return;
    }
    loading = false;
  }

  let observer = null;
  function watch() {
    const marker = document.getElementById("timeline-more");
    if (!marker || !timeline) return;
    if (!observer) {
      observer = new IntersectionObserver((entries) => {
        for (const entry of entries) if (entry.isIntersecting) loadMore(entry.target);
      }, { rootMargin: "400px" });
    }
    observer.observe(marker);
    marker.querySelector("a")?.addEventListener("click", (event) => {
      event.preventDefault();
      loadMore(marker);
    });
  }
  watch();

  const text = document.getElementById("sms-text");
  const shape = document.getElementById("sms-shape");
  if (text && shape) {
    let timer = null;
    text.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        if (!text.value.trim()) { shape.textContent = ""; return; }
        const response = await fetch("/api/v1/sms/preview", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf },
          body: JSON.stringify({ text: text.value }),
        });
        if (!response.ok) { shape.textContent = ""; return; }
        const info = await response.json();
        shape.textContent = info.encoding + " · " + info.segments + " × " + info.per_segment + " (" + info.remaining + ")";
      }, 250);
    });
  }
})();
