/* Relay cabinet: copy buttons and live updates over the dashboard WebSocket.
   Plain ES2017, no build step. Pages work without it (reload to refresh). */
(function () {
  "use strict";

  // --- Copy buttons: <button data-copy="#selector"> ---------------------------------
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.innerText.trim();
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied ✓";
      button.classList.add("is-copied");
      setTimeout(function () { button.textContent = label; button.classList.remove("is-copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
  });

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing else to try */ }
    document.body.removeChild(area);
  }

  // --- Phone menu: the main navigation folds under a button ----------------------
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-nav-toggle]");
    if (!toggle) return;
    var nav = document.getElementById(toggle.getAttribute("aria-controls"));
    if (!nav) return;
    var open = !nav.classList.contains("is-open");
    nav.classList.toggle("is-open", open);
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    toggle.textContent = open ? "Close" : "Menu";
  });

  // --- Live state ------------------------------------------------------------------
  function applyState(frame) {
    document.querySelectorAll('[data-state-badge="' + frame.id + '"]').forEach(function (badge) {
      badge.className = "badge badge-" + frame.tone;
      badge.setAttribute("data-state", frame.state);
      var label = badge.querySelector(".badge-label");
      if (label) label.textContent = frame.label;
    });
    var live = document.body.getAttribute("data-live-instance");
    if (live && String(frame.id) === live) {
      document.querySelectorAll("[data-show-when]").forEach(function (el) {
        var states = el.getAttribute("data-show-when").split(" ");
        el.hidden = states.indexOf(frame.state) === -1;
      });
      document.querySelectorAll("[data-state-text]").forEach(function (el) { el.textContent = frame.state; });
      if (frame.wid) {
        var phone = "+" + frame.wid.split("@")[0];
        document.querySelectorAll("[data-wid]").forEach(function (el) { el.textContent = phone; });
      }
    }
  }

  function applyQr(frame) {
    var img = document.querySelector("[data-qr]");
    if (!img) return;
    img.src = "data:image/png;base64," + frame.png;
    img.classList.add("is-fresh");
    var caption = document.querySelector("[data-qr-caption]");
    if (caption) caption.textContent = "Refreshes itself — updated " + new Date().toLocaleTimeString();
  }

  // --- Journal hints: a page part re-reads itself --------------------------------
  // The server says "the chat / notification queue / webhook log of this instance
  // changed"; elements listen with hx-trigger="relay:journal-<topic> from:body".
  // Bursts (a status per message of a bulk send) are folded into one re-read.
  var pendingJournal = {};
  function applyJournal(frame) {
    var topic = frame.topic;
    if (!topic) return;
    var entry = pendingJournal[topic];
    if (!entry) {
      entry = pendingJournal[topic] = { chats: {}, timer: null };
    }
    entry.chats[frame.chat_id || ""] = true;
    if (entry.timer) return;
    entry.timer = setTimeout(function () {
      delete pendingJournal[topic];
      var shown = document.querySelector("[data-live-chat]");
      if (topic === "chat" && shown) {
        var chat = shown.getAttribute("data-live-chat");
        if (!entry.chats[chat] && !entry.chats[""]) return; // another chat changed
      }
      document.body.dispatchEvent(new CustomEvent("relay:journal-" + topic, { detail: { chats: Object.keys(entry.chats) } }));
    }, 250);
  }

  function connect(path) {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var delay = 1000;
    var socket;
    function open() {
      socket = new WebSocket(scheme + location.host + path);
      socket.onopen = function () {
        delay = 1000;
        if (document.body.classList.contains("is-offline")) {
          // Hints sent while we were away are lost: re-read what the page shows.
          ["chat", "notifications", "webhooks"].forEach(function (topic) { applyJournal({ topic: topic, chat_id: "" }); });
        }
        document.body.classList.remove("is-offline");
      };
      socket.onmessage = function (message) {
        var frame = JSON.parse(message.data);
        if (frame.type === "state") applyState(frame);
        else if (frame.type === "qr") applyQr(frame);
        else if (frame.type === "journal") applyJournal(frame);
        else if (frame.type === "list_changed") document.body.dispatchEvent(new CustomEvent("relay:list-changed"));
        else if (frame.type === "deleted") location.href = "/dashboard/";
      };
      socket.onclose = function (event) {
        if (event.code === 4403 || event.code === 4404) return; // signed out or gone: no retry
        document.body.classList.add("is-offline");
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      };
    }
    open();
    window.relaySocket = function () { return socket; };
  }

  document.addEventListener("DOMContentLoaded", function () {
    var instance = document.body.getAttribute("data-live-instance");
    if (instance) connect("/ws/dashboard/instances/" + instance + "/");
    else if (document.body.hasAttribute("data-live")) connect("/ws/dashboard/");

    // Keep chat views scrolled to the newest message when the user is at the bottom.
    var bubbles = document.querySelector("[data-autoscroll]");
    if (bubbles) {
      bubbles.scrollTop = bubbles.scrollHeight;
      var atBottom = true;
      bubbles.addEventListener("scroll", function () {
        atBottom = bubbles.scrollHeight - bubbles.scrollTop - bubbles.clientHeight < 40;
      });
      document.body.addEventListener("htmx:afterSwap", function (event) {
        if (event.target === bubbles && atBottom) bubbles.scrollTop = bubbles.scrollHeight;
      });
    }

    // After an in-place rename, update the page title.
    document.body.addEventListener("htmx:afterSwap", function () {
      var renamed = document.querySelector("[data-rename]");
      var title = document.getElementById("instance-name");
      if (renamed && title) title.textContent = renamed.getAttribute("data-rename");
    });

    // Console: the search box picks a method from the list (and so loads its form).
    var search = document.querySelector("[data-method-search]");
    var picker = document.querySelector("[data-console-select]");
    if (search && picker) {
      var pick = function (commit) {
        var wanted = search.value.trim().toLowerCase();
        if (!wanted) return;
        var options = Array.prototype.slice.call(picker.options);
        var match = options.filter(function (o) { return o.value.toLowerCase() === wanted; })[0];
        if (!match && commit) {
          match = options.filter(function (o) { return o.value.toLowerCase().indexOf(wanted) !== -1; })[0];
        }
        if (!match || match.value === picker.value) return;
        search.value = match.value;
        picker.value = match.value;
        picker.dispatchEvent(new Event("change", { bubbles: true }));
      };
      search.addEventListener("input", function () { pick(false); });
      search.addEventListener("keydown", function (event) {
        if (event.key === "Enter") { event.preventDefault(); pick(true); }
      });
    }

    // Console: a plain number typed as chatId gets @c.us (a group id @g.us) when the
    // field is left, so what is sent is visible before it is sent.
    document.body.addEventListener("focusout", function (event) {
      var input = event.target;
      if (!input.matches || !input.matches("[data-chat-id]")) return;
      var text = input.value.trim();
      if (!text || text.indexOf("@") !== -1) return;
      if (/^\d{5,}-\d{5,}$/.test(text)) { input.value = text + "@g.us"; return; }
      if (/^\+?[\d\s()-]{5,}$/.test(text)) {
        var digits = text.replace(/\D/g, "");
        if (digits.length >= 5 && digits.length <= 16) input.value = digits + "@c.us";
      }
    });

    // Console: the answer must be in view when it lands. On a narrow screen it is
    // below the form; on a wide one it sits beside it, but at the end of a long form
    // the column can be pushed up, so its top is brought back into view.
    document.body.addEventListener("htmx:afterSwap", function (event) {
      if (event.target.id !== "console-result") return;
      var narrow = window.matchMedia("(max-width: 900px)").matches;
      var top = event.target.getBoundingClientRect().top;
      if (narrow || top < 0 || top > window.innerHeight - 80) {
        event.target.scrollIntoView({ block: "start" });
      }
      event.target.focus({ preventScroll: true });
    });

    // Phone: keep the current instance tab in view.
    var current = document.querySelector('.tabs [aria-current="page"]');
    if (current && current.scrollIntoView) {
      var tabs = current.parentElement;
      tabs.scrollLeft = current.offsetLeft - (tabs.clientWidth - current.offsetWidth) / 2;
    }

    // Console: the method picker needs its value sent as ?method=.
    var select = document.querySelector("[data-console-select]");
    if (select) {
      select.addEventListener("change", function () {
        var url = new URL(location.href);
        url.searchParams.set("method", select.value);
        history.replaceState(null, "", url);
        var result = document.getElementById("console-result");
        if (result) result.innerHTML = "";
      });
    }
  });
})();
