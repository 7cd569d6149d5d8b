// The template editor's preview: the unsaved template written out (debounced) as the
// user types, for the made-up client or a chosen contact, through
// /api/v1/templates/preview. A template is hostile input: its HTML goes only into an
// iframe with an empty sandbox (no script, no same origin), loaded from
// /templates/preview-frame with a received e-mail's policy (its styles show; srcdoc
// would inherit the console's, which allows none), and every other piece of it
// into textContent. Errors (a syntax error and its line, the
// sandbox, a time or size limit) come back from the hub as messages and are shown.
"use strict";

(function () {
  const form = document.getElementById("template-form");
  if (!form) return;
  const csrf = document.body.dataset.csrf;
  const L = JSON.parse(document.getElementById("editor-strings").textContent);
  const $ = (id) => document.getElementById(id);
  const output = $("preview-output");
  const failure = $("preview-error");
  const missing = $("preview-missing");
  const frame = $("preview-html");
  const chosen = $("preview-contact");
  const results = $("contact-results");
  const jsonHeaders = { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };
  const ENCODINGS = { gsm7: "GSM-7", ucs2: "UCS-2" };
  let timer = null;
  let asked = 0;

  function channel() {
    return $("template-channel").value;
  }

  function draft() {
    const email = channel() === "email";
    const found = {
      name: $("template-name").value.trim() || "preview",
      channel: channel(),
      language: $("template-language").value.trim(),
      subject: email ? $("template-subject").value : "",
      text: $("template-text").value,
    };
    if (email && $("template-html").value.trim()) found.html = $("template-html").value;
    return found;
  }

  function whose(body) {
    const contact = chosen.dataset.contact;
    if ($("preview-real").checked && contact) body.contact_id = Number(contact);
    else body.virtual = true;
    return body;
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  function problem(answer, status) {
    if (answer && answer.errors && answer.errors.length) {
      return answer.errors.map((e) => e.field + ": " + e.message).join("; ");
    }
    return (answer && answer.detail) || String(status);
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", headers: jsonHeaders, body: JSON.stringify(body),
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      answer = null;
    }
    return { ok: response.ok, status: response.status, answer: answer };
  }

  function showChannel() {
    const email = channel() === "email";
    form.dataset.channel = channel();
    document.querySelectorAll(".email-only").forEach((node) => { node.hidden = !email; });
    document.querySelectorAll(".sms-only").forEach((node) => { node.hidden = email; });
  }

  async function preview() {
    const mine = ++asked;
    output.dataset.state = "rendering";
    let found;
    try {
      found = await post("/api/v1/templates/preview", whose(draft()));
    } catch (error) {
      found = { ok: false, status: 0, answer: { detail: String(error) } };
    }
    if (mine !== asked) return; // typed again meanwhile; a newer preview is coming
    if (!found.ok) {
      failure.textContent = fill(L.failed, { reason: problem(found.answer, found.status) });
      failure.hidden = false;
      output.dataset.state = "failed";
      return;
    }
    const shown = found.answer;
    failure.hidden = true;
    $("preview-subject").textContent = shown.subject;
    $("preview-text").textContent = shown.text;
    if (shown.html !== null && channel() === "email") {
      const shipping = $("preview-frame-form");
      shipping.elements.html.value = shown.html;
      shipping.submit();
      frame.hidden = false;
    } else {
      frame.hidden = true;
    }
    const sms = $("preview-sms");
    const encoding = shown.sms ? ENCODINGS[shown.sms.encoding] || shown.sms.encoding : "";
    sms.textContent = shown.sms ? fill(L.sms_shape, Object.assign({}, shown.sms, { encoding: encoding })) : "";
    sms.dataset.encoding = shown.sms ? shown.sms.encoding : "";
    sms.dataset.segments = shown.sms ? String(shown.sms.segments) : "";
    missing.hidden = !shown.missing.length;
    missing.textContent = shown.missing.length ? fill(L.missing, { names: shown.missing.join(", ") }) : "";
    output.dataset.state = "ready";
  }

  function changed() {
    clearTimeout(timer);
    timer = setTimeout(preview, 350);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", () => { showChannel(); changed(); });
  $("preview-virtual").addEventListener("change", changed);
  $("preview-real").addEventListener("change", changed);

  let searchTimer = null;
  $("contact-search").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    const typed = event.target.value.trim();
    searchTimer = setTimeout(async () => {
      if (!typed) { results.replaceChildren(); return; }
      const key = /^[+\d][\d\s()-]*$/.test(typed) ? "phone" : "q";
      const response = await fetch("/api/v1/contacts?limit=10&" + key + "=" + encodeURIComponent(typed), {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      const people = response.ok ? answer.items : [];
      if (!people.length) {
        results.replaceChildren(Object.assign(document.createElement("li"), { textContent: L.none_found }));
        return;
      }
      results.replaceChildren(...people.map((person) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link choose-contact";
        button.dataset.contact = String(person.id);
        button.textContent = person.name + (person.company ? " · " + person.company : "");
        button.addEventListener("click", () => {
          chosen.dataset.contact = String(person.id);
          chosen.textContent = person.name;
          $("preview-real").checked = true;
          results.replaceChildren();
          preview();
        });
        const item = document.createElement("li");
        item.append(button);
        return item;
      }));
    }, 300);
  });

  const gaps = $("gaps-check");
  if (gaps) {
    gaps.addEventListener("click", async () => {
      const body = Object.assign(draft(), { segment_id: Number($("gaps-segment").value), limit: 20 });
      const found = await post("/api/v1/templates/missing", body);
      const people = $("gaps-people");
      if (!found.ok) {
        $("gaps-result").textContent = fill(L.failed, { reason: problem(found.answer, found.status) });
        people.replaceChildren();
        return;
      }
      $("gaps-result").textContent = fill(L.gaps, found.answer);
      people.replaceChildren(...found.answer.people.map((person) => {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = "/contacts/" + person.contact_id;
        link.textContent = person.name;
        item.append(link, " — " + person.missing.join(", "));
        return item;
      }));
    });
  }

  $("test-send").addEventListener("click", async () => {
    const body = whose(Object.assign(draft(), { to: $("test-to").value.trim() }));
    delete body.virtual; // a test is written for the chosen contact or with empty values
    const found = await post("/api/v1/templates/test", body);
    $("test-result").textContent = found.ok
      ? fill(L.sent, found.answer)
      : fill(L.not_sent, { reason: problem(found.answer, found.status) });
  });

  showChannel();
  preview();
})();
