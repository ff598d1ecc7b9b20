/* List pages: "select all" for bulk delete, and dragging kanban cards between columns.
   No inline scripts (the Content-Security-Policy forbids them): everything is wired here. */
(function () {
  "use strict";

  // The CSRF token htmx sends is on <body hx-headers='{"X-CSRFToken": ...}'>.
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (error) {
      return "";
    }
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("input[data-select-all]")) return;
    var table = box.closest("table");
    table.querySelectorAll("input[name=ids]").forEach(function (item) {
      item.checked = box.checked;
    });
  });

  function say(text, kind) {
    var message = document.getElementById("board-message");
    if (!message) return;
    if (!text) {
      message.hidden = true;
      return;
    }
    message.textContent = text;
    message.className = "flash " + (kind === "error" ? "flash-error" : "flash-success");
    message.hidden = false;
  }

  function cardsOf(list) {
    return list.querySelectorAll(":scope > .board-card");
  }

  function putBack(event) {
    var before = cardsOf(event.from)[event.oldDraggableIndex] ||
      event.from.querySelector(":scope > .load-more");
    event.from.insertBefore(event.item, before || null);
  }

  function recount(list, change) {
    var badge = list.closest(".board-column").querySelector(".board-count");
    if (!badge || badge.dataset.estimate) return;
    var total = parseInt(badge.dataset.count, 10) + change;
    badge.dataset.count = String(total);
    badge.textContent = total.toLocaleString(document.documentElement.lang || undefined);
  }

  function moved(board, event) {
    var card = event.item;
    var body = new URLSearchParams();
    body.set("view", board.dataset.view);
    body.set("id", card.dataset.id);
    body.set("version", card.dataset.version);
    body.set("to", event.to.dataset.value);
    card.classList.add("moving");
    fetch(board.dataset.moveUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(),
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json"
      },
      body: body.toString()
    }).then(function (response) {
      return response.json();
    }).then(function (answer) {
      card.classList.remove("moving");
      if (!answer.ok) {
        putBack(event);
        say(answer.message || board.dataset.failed, "error");
        return;
      }
      card.dataset.version = String(answer.version);
      // A transition with an approval lands in its pending state, maybe another column.
      var landed = board.querySelector(
        '.board-cards[data-value="' + CSS.escape(answer.value) + '"]') || event.to;
      if (landed !== event.to) landed.insertBefore(card, landed.firstChild);
      recount(event.from, -1);
      recount(landed, 1);
      say(answer.message, "success");
    }).catch(function () {
      card.classList.remove("moving");
      putBack(event);
      say(board.dataset.failed, "error");
    });
  }

  function setUpBoard(board) {
    if (typeof Sortable === "undefined" || board.dataset.ready) return;
    board.dataset.ready = "1";
    board.querySelectorAll(".board-cards").forEach(function (list) {
      Sortable.create(list, {
        group: "board",
        draggable: ".board-card",
        filter: "a",
        preventOnFilter: false,
        animation: 150,
        // Mouse events rather than native drag and drop: the same in every browser.
        forceFallback: true,
        fallbackTolerance: 3,
        onEnd: function (event) {
          if (event.from !== event.to) moved(board, event);
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".board").forEach(setUpBoard);
  });
})();
