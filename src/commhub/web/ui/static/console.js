// commhub console: the live feed and the screen pop, on every page.
// No library: DOM built with textContent only, so nothing from the feed is read as HTML.
"use strict";

(function () {
  const body = document.body;
  const strings = JSON.parse(document.getElementById("strings").textContent);
  const language = body.dataset.language || "en";
  const zone = body.dataset.zone || "UTC";
  const timeFormat = new Intl.DateTimeFormat(language, {
    timeZone: zone, hour: "2-digit", minute: "2-digit",
  });
  const dateTimeFormat = new Intl.DateTimeFormat(language, {
    timeZone: zone, dateStyle: "short", timeStyle: "short",
  });

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function when(iso) {
    if (!iso) return "";
    const moment = new Date(iso);
    const sameDay = new Date().toDateString() === moment.toDateString();
    return (sameDay ? timeFormat : dateTimeFormat).format(moment);
  }

  function interactionLine(item) {
    const channel = strings["channel_" + item.channel] || item.channel;
    const direction = strings["direction_" + item.direction] || item.direction;
    const status = strings.status[item.status] || item.status;
    const text = item.subject || item.summary || "";
    return el("li", {},
      el("span", { class: "muted" }, when(item.occurred_at), " · "),
      channel, " ", direction, " · ",
      el("span", { class: "badge badge-" + item.status }, status),
      text ? " — " + text.slice(0, 120) : "");
  }

  // Screen pops, one per call, replaced as the call moves on.
  const pops = document.getElementById("screen-pops");
  const shown = new Map();

  function closePop(callId) {
    const node = shown.get(callId);
    if (node) node.remove();
    shown.delete(callId);
  }

  function popFor(data) {
    const call = data.call;
    const number = call.number_display || call.number || "";
    const box = el("section", {
      class: "pop", role: "alertdialog", "aria-label": strings.incoming_call,
      "data-call": call.id, "data-match": data.match,
    });
    const close = el("button", { class: "close", type: "button", "aria-label": strings.dismiss }, "×");
    close.addEventListener("click", () => closePop(call.id));
    const kind = strings.incoming_call + (call.queue ? " · " + strings.queue + " " + call.queue : "");
    box.append(el("div", { class: "pop-head" }, el("span", { class: "pop-kind" }, kind), close));

    if (data.match === "match" && data.contact) {
      const contact = data.contact;
      box.append(el("h3", {}, el("a", { href: "/contacts/" + contact.id, class: "pop-name" }, contact.name || number)));
      box.append(el("div", { class: "pop-number" }, number));
      const facts = el("dl", { class: "fields" });
      if (contact.company) facts.append(el("dt", {}, strings.company), el("dd", {}, contact.company));
      if (contact.owner) facts.append(el("dt", {}, strings.owner), el("dd", {}, contact.owner.name));
      if (contact.tags && contact.tags.length) {
        facts.append(el("dt", {}, strings.tags), el("dd", {}, ...contact.tags.map((t) => el("span", { class: "tag" }, t))));
      }
      if (contact.consents && contact.consents.length) {
        facts.append(el("dt", {}, strings.consents), el("dd", {}, contact.consents.map(
          (c) => c.channel + "/" + c.purpose + ": " + (c.granted ? strings.granted : strings.refused)).join(", ")));
      }
      box.append(facts);
      box.append(el("div", { class: "muted" }, strings.recent));
      box.append(data.recent.length
        ? el("ul", { class: "pop-recent" }, ...data.recent.map(interactionLine))
        : el("p", { class: "muted" }, strings.nothing_yet));
      box.append(el("a", { class: "button", href: "/contacts/" + contact.id }, strings.open_card));
    } else if (data.match === "ambiguous") {
      box.append(el("h3", {}, number));
      box.append(el("p", {}, strings.several_contacts));
      box.append(el("ul", { class: "pop-candidates" }, ...data.candidates.map((c) => el("li", {},
        el("a", { href: "/contacts/" + c.id }, c.name || ("#" + c.id)), c.company ? " · " + c.company : ""))));
    } else if (data.match === "withheld") {
      box.append(el("h3", {}, strings.withheld_caller));
      if (number) box.append(el("div", { class: "pop-number" }, number));
    } else {
      box.append(el("h3", {}, strings.unknown_caller));
      box.append(el("div", { class: "pop-number" }, number));
      if (call.caller_name) box.append(el("div", { class: "muted" }, call.caller_name));
      const form = el("form", { method: "post", action: "/contacts/new", class: "pop-create" },
        el("input", { type: "hidden", name: "csrf_token", value: body.dataset.csrf }),
        el("input", { type: "hidden", name: "phones", value: call.number || "" }),
        el("label", {}, strings.name, el("input", { name: "name", value: call.caller_name || "", required: true })),
        el("label", {}, strings.company, el("input", { name: "company" })),
        el("button", { type: "submit" }, strings.create_contact));
      box.append(form);
      if (data.recent && data.recent.length) {
        box.append(el("div", { class: "muted" }, strings.earlier_from_number));
        box.append(el("ul", { class: "pop-recent" }, ...data.recent.map(interactionLine)));
      }
    }
    return box;
  }

  function onOffered(data) {
    const old = shown.get(data.call.id);
    const box = popFor(data);
    if (old) old.replaceWith(box); else pops.prepend(box);
    shown.set(data.call.id, box);
  }

  function onUpdated(data) {
    const box = shown.get(data.call.id);
    if (!box) return;
    if (data.call.ended_at) {
      box.classList.add("pop-ended");
      // A missed or finished call leaves the pop up briefly, then it goes.
      setTimeout(() => closePop(data.call.id), 15000);
    }
  }

  // The feed: reconnects by itself, with growing pauses, after any drop.
  const state = document.getElementById("feed-state");
  let delay = 1000;
  function setState(value, title) {
    if (!state) return;
    state.dataset.state = value;
    state.title = title;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const params = body.dataset.watchCalls ? "?calls=all" : "";
    const socket = new WebSocket(scheme + location.host + "/api/v1/live" + params);
    let opened = false;
    setState("connecting", strings.live_connecting);
    socket.addEventListener("open", () => {
      opened = true;
      delay = 1000;
      setState("open", strings.live_connected);
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (error) { return; }
      if (message.type === "call.offered") onOffered(message.data);
      else if (message.type === "call.updated") onUpdated(message.data);
      document.dispatchEvent(new CustomEvent("commhub:" + message.type, { detail: message.data }));
    });
    socket.addEventListener("close", (event) => {
      // 1006 before opening is how a refused handshake (503: not the listening process) looks.
      setState(opened ? "connecting" : "unavailable", opened ? strings.live_connecting : strings.live_unavailable);
      const wait = delay + Math.random() * delay * 0.3;
      delay = Math.min(delay * 2, 30000);
      setTimeout(connect, wait);
    });
  }

  window.commhub = { el, when, interactionLine, strings };
  if (pops) connect();
})();
