// commhub live view: keeps the server-rendered list of calls in progress current.
// Rows come and go with the feed's call.updated events (docs/live.md); elapsed times
// tick here every second. DOM built with textContent only (commhub.el).
"use strict";

(function () {
  const table = document.getElementById("live-calls");
  if (!table || !window.commhub) return;
  const rows = table.tBodies[0];
  const empty = document.getElementById("live-empty");
  const notice = document.getElementById("live-state");
  const feed = document.getElementById("feed-state");
  const { el } = window.commhub;
  const shared = window.commhub.strings;
  const strings = JSON.parse(document.getElementById("live-strings").textContent);
  let data = JSON.parse(document.getElementById("live-data").textContent);
  // The server's clock, not the browser's, says how long a call has lasted.
  let skew = Date.parse(data.now) - Date.now();
  const contactNames = new Map(Object.entries(data.contacts));
  const asked = new Set();

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
  }

  function duration(seconds) {
    const whole = Math.max(0, Math.round(seconds));
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = String(whole % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }

  function tick() {
    const now = Date.now() + skew;
    for (const row of rows.rows) {
      const cell = row.querySelector('[data-cell="elapsed"]');
      const started = Date.parse(row.dataset.started);
      if (cell && !Number.isNaN(started)) cell.textContent = duration((now - started) / 1000);
    }
    if (empty) empty.hidden = rows.rows.length > 0;
  }

  function operatorNames(update) {
    const names = [];
    const seen = new Set();
    if (update.operator_id != null && data.users[update.operator_id]) {
      seen.add(String(update.operator_id));
      names.push(data.users[update.operator_id]);
    }
    for (const extension of update.call.operators || []) {
      const userId = data.extensions[extension];
      if (userId === undefined) names.push(fill(strings.extension, { extension }));
      else if (!seen.has(userId)) {
        seen.add(userId);
        names.push(data.users[userId]);
      }
    }
    return names.length ? names.join(", ") : el("span", { class: "muted" }, "–");
  }

  // A contact first seen on the feed is named by the API (the event carries only its id).
  function askName(contactId) {
    if (asked.has(contactId)) return;
    asked.add(contactId);
    fetch("/api/v1/contacts/" + encodeURIComponent(contactId) + "?limit=1", {
      credentials: "same-origin", headers: { Accept: "application/json" },
    })
      .then((response) => (response.ok ? response.json() : null))
      .then((card) => {
        if (!card || !card.contact || !card.contact.name) return;
        contactNames.set(contactId, card.contact.name);
        for (const link of rows.querySelectorAll("a[data-contact]")) {
          if (link.dataset.contact === contactId) link.textContent = card.contact.name;
        }
      })
      .catch(() => asked.delete(contactId));
  }

  function customer(update) {
    const number = update.call.number_display || update.call.number || "";
    if (update.contact_id == null) return [number || strings.withheld];
    const id = String(update.contact_id);
    const name = contactNames.get(id);
    if (!name) askName(id);
    return [
      el("a", { href: "/contacts/" + id, "data-contact": id }, name || fill(strings.contact, { id })),
      el("div", { class: "muted" }, number),
    ];
  }

  function rowFor(update) {
    const call = update.call;
    const direction = shared["direction_" + call.direction] || call.direction;
    const status = shared.status[call.status] || call.status;
    return el("tr", {
      "data-interaction": update.interaction_id, "data-status": call.status, "data-started": call.started_at,
    },
      el("td", { "data-cell": "direction" }, direction),
      el("td", { "data-cell": "customer" }, ...customer(update)),
      el("td", { "data-cell": "operators" }, operatorNames(update)),
      el("td", { "data-cell": "queue" }, call.queue || ""),
      el("td", { "data-cell": "status" }, el("span", { class: "badge badge-" + call.status }, status)),
      el("td", { "data-cell": "started" }, el("time", { datetime: call.started_at }, window.commhub.when(call.started_at))),
      el("td", { "data-cell": "elapsed", class: "num elapsed" }, ""));
  }

  function rowOf(interactionId) {
    for (const row of rows.rows) if (row.dataset.interaction === String(interactionId)) return row;
    return null;
  }

  function apply(update) {
    if (!update || !update.call || update.interaction_id == null) return;
    const old = rowOf(update.interaction_id);
    if (update.call.ended_at) {
      if (old) old.remove();
    } else if (old) {
      old.replaceWith(rowFor(update));
    } else {
      rows.prepend(rowFor(update));
    }
    tick();
  }

  // After the feed was lost, events may have been missed: take the server's list again.
  // Events arriving meanwhile are applied on top of it.
  let pending = null;
  function resync() {
    if (pending) return;
    pending = [];
    fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
      .then((text) => {
        const fresh = new DOMParser().parseFromString(text, "text/html");
        const body = fresh.querySelector("#live-calls tbody");
        const freshData = fresh.getElementById("live-data");
        if (!body || !freshData) return;
        data = JSON.parse(freshData.textContent);
        skew = Date.parse(data.now) - Date.now();
        for (const [id, name] of Object.entries(data.contacts)) contactNames.set(id, name);
        rows.replaceChildren(...Array.from(body.rows, (row) => document.importNode(row, true)));
      })
      .catch(() => {})
      .finally(() => {
        const missed = pending;
        pending = null;
        missed.forEach(apply);
        tick();
      });
  }

  document.addEventListener("commhub:call.updated", (event) => {
    if (pending) pending.push(event.detail);
    apply(event.detail);
  });

  // Say so when the list is not live. Before the first connection, "connecting" is quiet.
  let wasOpen = false;
  const loadedAt = Date.now();
  function showState() {
    if (!notice || !feed) return;
    const state = feed.dataset.state;
    if (state === "open") {
      notice.hidden = true;
      if (wasOpen || Date.now() - loadedAt > 3000) resync();
      wasOpen = true;
    } else if (state === "unavailable") {
      notice.hidden = false;
      notice.textContent = strings.not_live;
    } else {
      notice.hidden = !wasOpen;
      notice.textContent = strings.reconnecting;
    }
  }
  let lastState = null;
  if (feed) {
    new MutationObserver(() => {
      if (feed.dataset.state !== lastState) {
        lastState = feed.dataset.state;
        showState();
      }
    }).observe(feed, { attributes: true, attributeFilter: ["data-state"] });
  }
  lastState = feed ? feed.dataset.state : null;
  showState();
  tick();
  setInterval(tick, 1000);
})();
