// The segment builder: a tree of groups (ALL / ANY / NOT) and conditions kept in the
// page, written into the form's "rules" field as the JSON the API takes
// (docs/segments.md), and counted live through /api/v1/segments/preview while the
// user edits. An error from the hub names a node's path (rules.all[1].any[0].value);
// it is shown on that node. The list page's "Count" buttons use the same API.
"use strict";

(function () {
  const csrf = document.body.dataset.csrf;
  const headers = { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf };

  document.querySelectorAll(".count-now").forEach((button) => {
    button.addEventListener("click", async () => {
      const out = document.querySelector('.segment-count[data-segment="' + button.dataset.segment + '"]');
      const response = await fetch("/api/v1/segments/" + button.dataset.segment, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      out.textContent = response.ok ? String(answer.count) : answer.detail;
    });
  });

  const root = document.getElementById("builder");
  if (!root) return;
  const rulesField = document.getElementById("segment-rules");
  const options = JSON.parse(document.getElementById("segment-options").textContent);
  const L = JSON.parse(document.getElementById("builder-strings").textContent);
  const countOut = document.getElementById("live-count");
  const sampleList = document.getElementById("live-sample");
  const liveError = document.getElementById("live-error");
  const TEXT_FIELDS = ["name", "company", "city", "time_zone", "extra", "tag"];

  function make(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function picker(part, label, choices, chosen) {
    const box = make("select", { "data-part": part, "aria-label": label });
    for (const [value, text] of choices) {
      const option = make("option", { value: String(value), text: text });
      if (String(value) === String(chosen ?? "")) option.selected = true;
      box.append(option);
    }
    return box;
  }

  function monthAgo() {
    const day = new Date(Date.now() - 30 * 86400000);
    return day.toISOString().slice(0, 10);
  }

  function entry(part, label, type, value) {
    if (type === "date" && !value) value = monthAgo(); // a month back: a count to start from
    return make("input", {
      "data-part": part, "aria-label": label, placeholder: label, title: label, type: type, value: value ?? "",
    });
  }

  function named(list) {
    return [["", L.choose]].concat(list.map((item) => [item.id, item.name]));
  }

  // The inputs a condition needs for its field and operator, filled from ``value``.
  function inputs(field, op, value, key) {
    const v = value && typeof value === "object" ? value : {};
    const parts = [];
    if (field === "extra") parts.push(entry("key", L.key, "text", key));
    if (TEXT_FIELDS.includes(field)) {
      if (op !== "empty") parts.push(entry("value", L.value, "text", typeof value === "string" ? value : ""));
    } else if (field === "owner") {
      if (op !== "empty") parts.push(picker("value", L.value, named(options.owners), value));
    } else if (field === "created") {
      if (op === "within_days") parts.push(entry("value", L.days, "number", value));
      else parts.push(entry("value", L.date, "date", typeof value === "string" ? value.slice(0, 10) : ""));
    } else if (field === "consent") {
      const channels = Object.entries(L.channels).filter(([name]) => name);
      parts.push(picker("channel", L.channels[""], channels, v.channel || "sms"));
      parts.push(entry("purpose", L.purpose, "text", v.purpose || "marketing"));
    } else if (field === "interaction") {
      parts.push(picker("channel", L.channels[""], Object.entries(L.channels), v.channel || ""));
      parts.push(picker("direction", L.directions[""], Object.entries(L.directions), v.direction || ""));
      if (op.startsWith("count_")) {
        parts.push(entry("count", L.count, "number", v.count));
        parts.push(entry("since", L.since, "date", (v.since || "").slice(0, 10)));
      } else {
        parts.push(entry("date", L.date, "date", (v.date || "").slice(0, 10)));
      }
    } else if (field === "missed_call") {
      parts.push(entry("value", L.date, "date", typeof value === "string" ? value.slice(0, 10) : ""));
    } else if (field === "deal") {
      const pipelines = [["", L.any_pipeline]].concat(options.pipelines.map((p) => [p.id, p.name]));
      parts.push(picker("pipeline", L.pipeline, pipelines, v.pipeline_id));
      const pipeline = options.pipelines.find((p) => String(p.id) === String(v.pipeline_id ?? ""));
      if (pipeline) {
        const stages = [["", L.any_stage]].concat(pipeline.stages.map((stage) => [stage.id, stage.name]));
        parts.push(picker("stage", L.stage, stages, v.stage_id));
      }
      if (op.endsWith("_after")) parts.push(entry("date", L.date, "date", (v.date || "").slice(0, 10)));
      parts.push(entry("amount", L.amount, "text", v.amount_at_least || ""));
    } else if (field === "campaign") {
      parts.push(picker("value", L.value, named(options.campaigns), value));
    } else if (field === "list") {
      parts.push(picker("value", L.value, named(options.lists), value));
    } else {
      parts.push(entry("value", L.value, "number", value));
    }
    return parts;
  }

  function condition(data) {
    const node = make("div", { class: "seg-cond", "data-node": "condition" });
    const fields = Object.keys(options.ops);
    const field = fields.includes(data.field) ? data.field : "city";
    const fieldBox = picker("field", L.field, fields.map((f) => [f, L.fields[f] || f]), field);
    const opBox = make("select", { "data-part": "op", "aria-label": L.operator });
    const holder = make("span", { class: "seg-inputs" });
    const remove = make("button", { type: "button", class: "secondary seg-remove", text: L.remove });
    const error = make("p", { class: "notice notice-error node-error", role: "alert", hidden: "" });

    function fillOps(chosen) {
      opBox.replaceChildren();
      for (const op of options.ops[fieldBox.value]) {
        const option = make("option", { value: op, text: L.ops[op] || op });
        if (op === chosen) option.selected = true;
        opBox.append(option);
      }
    }
    function fillInputs(value, key) {
      holder.replaceChildren(...inputs(fieldBox.value, opBox.value, value, key));
    }
    fillOps(data.op);
    fillInputs(data.value, data.key);
    fieldBox.addEventListener("change", () => { fillOps(""); fillInputs(undefined, ""); });
    holder.addEventListener("change", (event) => {
      // Another pipeline has other stages: offer its own.
      if (event.target.dataset.part !== "pipeline") return;
      const value = conditionValue(fieldBox.value, opBox.value, holder);
      delete value.stage_id;
      fillInputs(value, "");
    });
    opBox.addEventListener("change", () => fillInputs(undefined, partValue(holder, "key")));
    remove.addEventListener("click", () => { node.remove(); changed(); });
    node.append(fieldBox, opBox, holder, remove, error);
    return node;
  }

  function group(kind, children, isRoot) {
    const node = make("div", { class: "seg-group", "data-node": "group" });
    const kindBox = picker("kind", L.groups.all, Object.entries(L.groups), kind);
    kindBox.classList.add("group-kind");
    const list = make("div", { class: "seg-children" });
    const addCondition = make("button", { type: "button", class: "secondary add-condition", text: L.add_condition });
    const addGroup = make("button", { type: "button", class: "secondary add-group", text: L.add_group });
    const error = make("p", { class: "notice notice-error node-error", role: "alert", hidden: "" });
    addCondition.addEventListener("click", () => { list.append(condition({})); changed(); });
    addGroup.addEventListener("click", () => {
      list.append(group("any", [{ field: "city", op: "equals", value: "" }], false));
      changed();
    });
    const head = make("div", { class: "seg-head" }, [kindBox, addCondition, addGroup]);
    if (!isRoot) {
      const remove = make("button", { type: "button", class: "secondary seg-remove", text: L.remove });
      remove.addEventListener("click", () => { node.remove(); changed(); });
      head.append(remove);
    }
    node.append(head, error, list);
    for (const child of children) list.append(build(child, false));
    return node;
  }

  // A node of the JSON tree as page elements.
  function build(data, isRoot) {
    if (data && typeof data === "object") {
      for (const kind of ["all", "any"]) {
        if (Array.isArray(data[kind])) return group(kind, data[kind], isRoot);
      }
      if ("not" in data) {
        const inner = data.not;
        // A NOT of one ALL group is how the builder writes NOT of several rules.
        if (inner && Array.isArray(inner.all)) return group("not", inner.all, isRoot);
        return group("not", [inner], isRoot);
      }
    }
    if (isRoot) return group("all", [data || {}], true);
    return condition(data || {});
  }

  function partValue(holder, part) {
    const found = holder.querySelector('[data-part="' + part + '"]');
    return found ? found.value : "";
  }

  function whole(text) {
    const trimmed = String(text).trim();
    if (trimmed === "") return null;
    return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
  }

  function conditionValue(field, op, holder) {
    const part = (name) => partValue(holder, name);
    if (TEXT_FIELDS.includes(field)) return op === "empty" ? undefined : part("value");
    if (field === "owner") return op === "empty" ? undefined : whole(part("value"));
    if (field === "created") return op === "within_days" ? whole(part("value")) : part("value");
    if (field === "missed_call") return part("value");
    if (field === "consent") return { channel: part("channel"), purpose: part("purpose") };
    if (field === "interaction") {
      const found = { channel: part("channel"), direction: part("direction") };
      if (op.startsWith("count_")) {
        found.count = whole(part("count"));
        found.since = part("since");
      } else {
        found.date = part("date");
      }
      return found;
    }
    if (field === "deal") {
      const found = {};
      if (part("pipeline")) found.pipeline_id = whole(part("pipeline"));
      if (part("stage")) found.stage_id = whole(part("stage"));
      if (op.endsWith("_after")) found.date = part("date");
      if (part("amount").trim()) found.amount_at_least = part("amount").trim();
      return found;
    }
    return whole(part("value"));
  }

  // The element's rule as JSON; each element remembers the path the hub will name.
  function read(node, path) {
    node.dataset.path = path;
    if (node.dataset.node === "condition") {
      const field = node.querySelector('[data-part="field"]').value;
      const op = node.querySelector('[data-part="op"]').value;
      const holder = node.querySelector(".seg-inputs");
      const rule = { field: field, op: op };
      if (field === "extra") rule.key = partValue(holder, "key");
      const value = conditionValue(field, op, holder);
      if (value !== undefined) rule.value = value;
      return rule;
    }
    const kind = node.querySelector(":scope > .seg-head > .group-kind").value;
    const children = Array.from(node.querySelector(":scope > .seg-children").children);
    if (kind === "not") {
      if (children.length === 1) return { not: read(children[0], path + ".not") };
      return { not: { all: children.map((child, i) => read(child, path + ".not.all[" + i + "]")) } };
    }
    return { [kind]: children.map((child, i) => read(child, path + "." + kind + "[" + i + "]")) };
  }

  function showError(path, message) {
    root.querySelectorAll(".node-error").forEach((p) => { p.hidden = true; p.textContent = ""; });
    root.querySelectorAll(".has-error").forEach((n) => n.classList.remove("has-error"));
    if (!path) return null;
    let best = null;
    root.querySelectorAll("[data-path]").forEach((node) => {
      const at = node.dataset.path;
      const under = path === at || path.startsWith(at + ".") || path.startsWith(at + "[");
      if (under && (!best || at.length > best.dataset.path.length)) best = node;
    });
    if (best) {
      const box = best.querySelector(":scope > .node-error");
      box.textContent = path + ": " + message;
      box.hidden = false;
      best.classList.add("has-error");
    }
    return best;
  }

  let tree;
  try {
    tree = JSON.parse(rulesField.value || "{}");
  } catch (error) {
    tree = {};
  }
  const top = build(tree, true);
  root.append(top);

  let timer = null;
  let asked = 0;

  function serialise() {
    const rules = read(top, "rules");
    rulesField.value = JSON.stringify(rules);
    return rules;
  }

  async function count() {
    const rules = serialise();
    const mine = ++asked;
    countOut.dataset.state = "counting";
    countOut.textContent = L.counting;
    let response;
    let answer;
    try {
      response = await fetch("/api/v1/segments/preview", {
        method: "POST", credentials: "same-origin", headers: headers,
        body: JSON.stringify({ rules: rules, limit: 10 }),
      });
      answer = await response.json();
    } catch (error) {
      if (mine !== asked) return;
      countOut.dataset.state = "failed";
      countOut.textContent = "—";
      liveError.textContent = L.failed.replace("{reason}", String(error));
      liveError.hidden = false;
      return;
    }
    if (mine !== asked) return; // the user edited again; a newer count is on its way
    if (!response.ok) {
      const first = (answer.errors || [])[0] || {};
      countOut.dataset.state = "failed";
      countOut.textContent = "—";
      liveError.textContent = L.failed.replace("{reason}", answer.detail || response.status);
      liveError.hidden = false;
      sampleList.replaceChildren();
      showError(first.field || "", first.message || answer.detail || "");
      return;
    }
    showError("", "");
    liveError.hidden = true;
    countOut.textContent = String(answer.count);
    countOut.dataset.state = "ready";
    sampleList.replaceChildren(...answer.sample.map((person) => make("li", {}, [
      make("a", { href: "/contacts/" + person.id, text: person.name }),
      make("span", { class: "muted", text: [person.company, person.phone, person.email].filter(Boolean).join(" · ") ? " " + [person.company, person.phone, person.email].filter(Boolean).join(" · ") : "" }),
    ])));
  }

  function changed() {
    serialise();
    clearTimeout(timer);
    timer = setTimeout(count, 400);
  }

  // A new static list has members, not rules: the builder steps aside while it is chosen.
  const kind = document.getElementById("segment-kind");
  function showKind() {
    const ruled = kind.value !== "static";
    for (const id of ["builder", "rules-heading", "live"]) {
      const node = document.getElementById(id);
      if (node) node.hidden = !ruled;
    }
  }
  kind.addEventListener("change", showKind);
  showKind();

  root.addEventListener("input", changed);
  root.addEventListener("change", changed);
  document.getElementById("segment-form").addEventListener("submit", serialise);

  if (root.dataset.errorPath) {
    // The hub refused the save: show its message on the node, keep the tree as typed.
    serialise();
    showError(root.dataset.errorPath, root.dataset.errorMessage || "");
  } else {
    count();
  }
})();
