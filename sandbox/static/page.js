// The sandbox page's only script. The page works without it (plain forms, 303 back to the page);
// this adds what Slack's client does on its own: live updates, confirmation dialogs, menus that
// send on change, and a channel that stays scrolled to its newest message.
"use strict";

(function () {
  const messages = () => document.querySelector("#pane .messages");

  function scrollToNewest(force) {
    const list = messages();
    if (!list) return;
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    if (force || nearBottom) list.scrollTop = list.scrollHeight;
  }

  // Live updates: the server sends an event whenever the workspace changed; fetch this page
  // again and swap the regions whose content changed (data-live is a digest of it). The
  // message box and a modal being typed into are left alone unless they changed themselves.
  let fetching = false;
  let again = false;
  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const response = await fetch(location.pathname + location.search, { headers: { "X-Sandbox-Live": "1" } });
      if (!response.ok) return;
      const next = new DOMParser().parseFromString(await response.text(), "text/html");
      let pane = false;
      for (const fresh of next.querySelectorAll("[data-live]")) {
        const current = document.getElementById(fresh.id);
        if (current && current.dataset.live !== fresh.dataset.live) {
          const stuck = current.id === "pane" && messages() && (messages().scrollHeight - messages().scrollTop - messages().clientHeight < 80);
          current.replaceWith(document.adoptNode(fresh));
          if (fresh.id === "pane") pane = stuck;
          if (fresh.id === "thread") document.body.classList.toggle("with-thread", fresh.innerHTML.trim() !== "");
        }
      }
      if (pane) scrollToNewest(true);
      document.body.dataset.version = String(Number(document.body.dataset.version || 0) + 1);
    } catch (_) {
      // the sandbox went away (stopped, restarted): the stream reconnects by itself
    } finally {
      fetching = false;
      if (again) { again = false; refresh(); }
    }
  }

  function listen() {
    if (!window.EventSource) { setInterval(refresh, 2000); return; }
    // Changes since this page was rendered come at once: none is lost before the stream opens.
    const stream = new EventSource("/sandbox/stream?since=" + encodeURIComponent(document.body.dataset.since || ""));
    stream.onmessage = refresh;
    stream.onopen = () => { document.body.dataset.live = "on"; };
  }

  // Confirmation dialogs (an element's `confirm` object): ask first, submit only on confirm.
  document.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (!button || !button.dataset.confirm || button.dataset.confirmed) return;
    event.preventDefault();
    const spec = JSON.parse(button.dataset.confirm);
    const dialog = document.getElementById("confirm");
    dialog.querySelector("h2").textContent = spec.title;
    dialog.querySelector(".modal-body").innerHTML = spec.text;  // rendered and escaped by the server
    const yes = dialog.querySelector("[value=confirm]");
    yes.textContent = spec.confirm;
    yes.className = "btn " + (spec.style === "danger" ? "danger" : "primary");
    dialog.querySelector("[value=deny]").textContent = spec.deny;
    dialog.onclose = () => {
      if (dialog.returnValue !== "confirm") return;
      button.dataset.confirmed = "1";
      button.form ? button.form.requestSubmit(button) : null;
    };
    dialog.returnValue = "";
    dialog.showModal();
  });

  // Menus and pickers that Slack sends as soon as something is chosen.
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
  });

  // One open menu at a time, closed by a click elsewhere.
  document.addEventListener("click", (event) => {
    for (const menu of document.querySelectorAll("details.menu[open]")) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    }
  });

  document.addEventListener("DOMContentLoaded", () => { scrollToNewest(true); listen(); });
})();
