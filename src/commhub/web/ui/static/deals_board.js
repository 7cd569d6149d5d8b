// The deals board: drag a card to another column, or move it from the keyboard
// (the card's "Move to…" select and button, or the arrow keys on a focused card).
// Each move is one POST to /deals/{id}/stage; the card moves only when the hub agrees.
"use strict";

(function () {
  const board = document.getElementById("board");
  if (!board) return;
  const status = document.getElementById("board-status");
  const csrf = document.body.dataset.csrf;

  function say(text, failed) {
    status.textContent = text;
    status.className = failed ? "notice notice-error" : "notice notice-ok";
    status.hidden = false;
  }

  function columnOf(stageId) {
    return board.querySelector('.board-column[data-stage="' + stageId + '"]');
  }

  function adjust(column, delta) {
    const count = column.querySelector(".count");
    const n = parseInt(count.textContent.replace(/\D/g, ""), 10);
    if (!Number.isNaN(n)) count.textContent = String(n + delta);
  }

  async function move(card, stageId) {
    const from = card.closest(".board-column");
    const to = columnOf(stageId);
    if (!to || to === from) return;
    const form = new FormData();
    form.append("csrf_token", csrf);
    form.append("stage_id", stageId);
    let answer;
    try {
      const response = await fetch("/deals/" + card.dataset.deal + "/stage", {
        method: "POST", credentials: "same-origin", body: form,
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      });
      answer = await response.json();
      if (!response.ok) {
        say(status.dataset.failed.replace("{reason}", answer.detail || response.status), true);
        return;
      }
    } catch (error) {
      say(status.dataset.failed.replace("{reason}", String(error)), true);
      return;
    }
    to.querySelector(".cards").prepend(card);
    card.querySelector(".move-to").value = String(stageId);
    adjust(from, -1);
    adjust(to, 1);
    const name = to.getAttribute("aria-label");
    say(status.dataset.moved.replace("{stage}", name), false);
    card.focus();
  }

  board.addEventListener("dragstart", (event) => {
    const card = event.target.closest && event.target.closest(".deal-card");
    if (!card) return;
    event.dataTransfer.setData("text/plain", card.dataset.deal);
    event.dataTransfer.effectAllowed = "move";
  });
  board.addEventListener("dragover", (event) => {
    if (event.target.closest(".board-column")) event.preventDefault();
  });
  board.addEventListener("drop", (event) => {
    const column = event.target.closest(".board-column");
    if (!column) return;
    event.preventDefault();
    const card = document.getElementById("deal-" + event.dataTransfer.getData("text/plain"));
    if (card) move(card, column.dataset.stage);
  });

  board.addEventListener("submit", (event) => {
    const form = event.target.closest(".deal-move");
    if (!form) return;
    event.preventDefault();
    move(form.closest(".deal-card"), form.querySelector(".move-to").value);
  });

  board.addEventListener("keydown", (event) => {
    const card = event.target;
    if (!card.classList || !card.classList.contains("deal-card")) return;
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    const columns = Array.from(board.querySelectorAll(".board-column"));
    const at = columns.indexOf(card.closest(".board-column"));
    const next = columns[at + (event.key === "ArrowRight" ? 1 : -1)];
    if (!next) return;
    event.preventDefault();
    move(card, next.dataset.stage);
  });

  board.addEventListener("click", async (event) => {
    const link = event.target.closest(".show-more");
    if (!link) return;
    event.preventDefault();
    const item = link.closest(".column-more");
    const response = await fetch(link.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const list = item.parentElement;
    item.remove();
    list.insertAdjacentHTML("beforeend", await response.text());
  });
})();
