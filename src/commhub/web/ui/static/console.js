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

  function fill(template, values) {
    return template.replace(/%\((\w+)\)s/g, (_, name) => String(values[name] ?? ""));
  }

  function duration(seconds) {
    const whole = Math.max(0, Math.round(seconds));
    const minutes = Math.floor(whole / 60);
    const hours = Math.floor(minutes / 60);
    const secs = String(whole % 60).padStart(2, "0");
    return hours ? hours + ":" + String(minutes % 60).padStart(2, "0") + ":" + secs : minutes + ":" + secs;
  }

  // Screen pops, one per call: ringing → answered → ended (or missed), never backwards.
  // A pop shown again (a page loaded mid-call, a reconnect) keeps what the operator typed.
  const pops = document.getElementById("screen-pops");
  const shown = new Map(); // call id → {box, data}
  const ENDED_POP_MS = 15000;
  const RANK = { ringing: 0, answered: 1, ended: 2 };
  const UNANSWERED = new Set(["missed", "abandoned", "busy", "no_answer", "failed"]);

  function stageOf(call) {
    if (call.ended_at) return "ended";
    if (call.answered_at || call.status === "answered") return "answered";
    return "ringing";
  }

  function stateText(call, extension) {
    const stage = stageOf(call);
    if (stage === "ringing") return strings.pop_ringing;
    if (stage === "answered") {
      const operators = call.operators || [];
      if (extension && operators.includes(extension)) return strings.pop_answered_by_you;
      if (operators.length) return fill(strings.pop_answered_by, { extension: operators[0] });
      return strings.pop_answered;
    }
    if (call.status === "abandoned") return strings.pop_abandoned;
    if (UNANSWERED.has(call.status)) return strings.pop_missed;
    return strings.pop_ended + (call.duration_s ? " · " + duration(call.duration_s) : "");
  }

  // Focus that was in a closed pop goes to the next pop, if any (else back to the page).
  function closePop(callId) {
    const entry = shown.get(callId);
    if (!entry) return;
    shown.delete(callId);
    clearTimeout(entry.timer);
    const hadFocus = entry.box.contains(document.activeElement);
    entry.box.remove();
    const next = hadFocus ? pops.querySelector(".pop") : null;
    if (next) next.focus();
  }

  // An ended pop stays a while, longer if the operator is still typing in it.
  function closeLater(callId) {
    const entry = shown.get(callId);
    if (!entry || entry.timer) return;
    entry.timer = setTimeout(function again() {
      const current = shown.get(callId);
      if (!current) return;
      if (current.box.contains(document.activeElement)) current.timer = setTimeout(again, ENDED_POP_MS);
      else closePop(callId);
    }, ENDED_POP_MS);
  }

  // Bring a shown pop to ``call``'s state, unless that would move it backwards.
  function showState(entry, call) {
    const before = entry.data.call;
    if (entry.stage !== undefined && RANK[stageOf(call)] < RANK[stageOf(before)]) return;
    entry.data = Object.assign({}, entry.data, { call });
    const stage = stageOf(call);
    entry.stage = stage;
    const box = entry.box;
    box.classList.remove("pop-ringing", "pop-answered", "pop-ended", "pop-missed");
    box.classList.add("pop-" + stage);
    if (stage === "ended" && UNANSWERED.has(call.status)) box.classList.add("pop-missed");
    box.dataset.state = stage;
    box.dataset.status = call.status;
    box.querySelector(".pop-state").textContent = stateText(call, entry.data.extension);
    if (stage === "ended") closeLater(call.id);
  }

  function popFor(data) {
    const call = data.call;
    const number = call.number_display || call.number || "";
    const label = "pop-title-" + call.id.replace(/[^\w-]/g, "_");
    const box = el("section", {
      class: "pop", role: "alertdialog", tabindex: "-1", "aria-modal": "false",
      "aria-labelledby": label, "aria-describedby": label + "-state",
      "data-call": call.id, "data-match": data.match,
    });
    const close = el("button", { class: "close", type: "button", "aria-label": strings.dismiss }, "×");
    close.addEventListener("click", () => closePop(call.id));
    const kind = strings.incoming_call + (call.queue ? " · " + strings.queue + " " + call.queue : "");
    box.append(el("div", { class: "pop-head" }, el("span", { class: "pop-kind" }, kind), close));
    box.append(el("p", { class: "pop-state", id: label + "-state", role: "status" }));
    // The call itself is already logged: never show it as a line of the caller's past.
    const recent = (data.recent || []).filter((item) => !(item.channel === "call" && item.external_id === call.id));

    if (data.match === "match" && data.contact) {
      const contact = data.contact;
      box.append(el("h3", { id: label }, el("a", { href: "/contacts/" + contact.id, class: "pop-name" }, contact.name || number)));
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
      box.append(recent.length
        ? el("ul", { class: "pop-recent" }, ...recent.map(interactionLine))
        : el("p", { class: "muted" }, strings.nothing_yet));
      const deals = data.deals || [];
      if (deals.length) {
        box.append(el("div", { class: "muted" }, strings.open_deals));
        box.append(el("ul", { class: "pop-deals" }, ...deals.map((deal) => el("li", {},
          el("a", { href: "/deals/" + deal.id }, deal.title), " ",
          el("span", { class: "badge" }, strings["stage_" + deal.stage_preset] || deal.stage)))));
      }
      box.append(el("a", { class: "button", href: "/contacts/" + contact.id }, strings.open_card));
      box.append(el("a", { class: "button secondary pop-new-deal", href: "/deals/new?contact=" + contact.id }, strings.new_deal));
    } else if (data.match === "ambiguous") {
      box.append(el("h3", { id: label }, number));
      box.append(el("p", {}, strings.several_contacts));
      box.append(el("ul", { class: "pop-candidates" }, ...data.candidates.map((c) => el("li", {},
        el("a", { href: "/contacts/" + c.id }, c.name || ("#" + c.id)), c.company ? " · " + c.company : ""))));
    } else if (data.match === "withheld") {
      box.append(el("h3", { id: label }, strings.withheld_caller));
      if (number) box.append(el("div", { class: "pop-number" }, number));
    } else {
      box.append(el("h3", { id: label }, strings.unknown_caller));
      box.append(el("div", { class: "pop-number" }, number));
      if (call.caller_name) box.append(el("div", { class: "muted" }, call.caller_name));
      const form = el("form", { method: "post", action: "/contacts/new", class: "pop-create" },
        el("input", { type: "hidden", name: "csrf_token", value: body.dataset.csrf }),
        el("input", { type: "hidden", name: "phones", value: call.number || "" }),
        el("label", {}, strings.name, el("input", { name: "name", value: call.caller_name || "", required: true })),
        el("label", {}, strings.company, el("input", { name: "company" })),
        el("button", { type: "submit" }, strings.create_contact));
      box.append(form);
      if (recent.length) {
        box.append(el("div", { class: "muted" }, strings.earlier_from_number));
        box.append(el("ul", { class: "pop-recent" }, ...recent.map(interactionLine)));
      }
    }
    return box;
  }

  function onOffered(data) {
    const entry = shown.get(data.call.id);
    if (entry) {
      showState(entry, data.call);
      return;
    }
    const fresh = { box: popFor(data), data, stage: undefined, timer: null };
    shown.set(data.call.id, fresh);
    showState(fresh, data.call);
    pops.prepend(fresh.box);
  }

  function onUpdated(data) {
    const entry = shown.get(data.call.id);
    if (entry) showState(entry, data.call);
  }

  // After a reconnect the server pops again every call still up: a pop it does not
  // name belongs to a call that ended while the feed was away.
  function onHello(data) {
    const stillUp = new Set(data.pops || []);
    for (const [callId, entry] of shown) {
      if (entry.stage === "ended" || stillUp.has(callId)) continue;
      // How it ended is not known here: "call ended", no more.
      showState(entry, Object.assign({}, entry.data.call, { status: "ended", ended_at: new Date().toISOString(), duration_s: null }));
    }
    showTelephony(data.telephony);
  }

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented || !pops) return;
    const inside = event.target instanceof Element ? event.target.closest("#screen-pops .pop") : null;
    const topmost = inside || pops.querySelector(".pop");
    if (!topmost) return;
    event.preventDefault();
    closePop(topmost.dataset.call);
  });

  // The dot in the top bar: the live feed's state, and the PBX link's when it is down.
  const state = document.getElementById("feed-state");
  let delay = 1000;
  let feedTitle = "";
  function refreshTitle() {
    if (state) state.title = telephonyDown ? feedTitle + " · " + strings.telephony_down_short : feedTitle;
  }
  function setState(value, title) {
    if (!state) return;
    state.dataset.state = value;
    feedTitle = title;
    refreshTitle();
  }

  // The PBX link: a page says so when the hub cannot follow calls (docs/live.md).
  const telephonyNote = document.getElementById("telephony-state");
  let telephonyDown = false;
  let telephonyTimer = null;
  function showTelephony(status) {
    clearTimeout(telephonyTimer);
    if (!status) {
      telephonyDown = false;
      if (state) delete state.dataset.telephony;
      if (telephonyNote) telephonyNote.hidden = true;
      refreshTitle();
      return;
    }
    const wasDown = telephonyDown;
    telephonyDown = !status.connected;
    if (state) state.dataset.telephony = telephonyDown ? "down" : "up";
    refreshTitle();
    if (!telephonyNote) return;
    if (telephonyDown) {
      telephonyNote.className = "telephony-state telephony-down";
      telephonyNote.textContent = strings.telephony_down;
      telephonyNote.hidden = false;
    } else if (wasDown) {
      telephonyNote.className = "telephony-state telephony-up";
      telephonyNote.textContent = strings.telephony_up;
      telephonyNote.hidden = false;
      telephonyTimer = setTimeout(() => { telephonyNote.hidden = true; }, 5000);
    } else {
      telephonyNote.hidden = true;
    }
  }

  // The feed: reconnects by itself, with growing pauses, after any drop.
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
      if (message.type === "hello") onHello(message.data);
      else if (message.type === "call.offered") onOffered(message.data);
      else if (message.type === "call.updated") onUpdated(message.data);
      else if (message.type === "telephony.status") showTelephony(message.data);
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

  window.commhub = { el, when, interactionLine, strings, fill, duration };
  if (pops) connect();
})();
