// The annotate page's answer panel: the post, the four labels, skip, flag and undo, with their keys.
//
// Every answer names the post and the lease that were on screen when the key was pressed (the server records it for
// that post or for none), and after an answer the panel takes no input until the server has handled it and drawn the
// next post: a key pressed meanwhile is dropped and counted, never applied to a post the annotator has not seen.

const panels = new WeakMap();

const TEMPLATE = `
  <div class="ll-panel">
    <div class="ll-caption"></div>
    <div class="lingualoop-post"></div>
    <div class="ll-suggestion" hidden></div>
    <div class="ll-labels"></div>
    <div class="ll-actions">
      <button type="button" class="ll-action" data-action="skip">Skip <kbd>S</kbd></button>
      <button type="button" class="ll-action" data-action="flag">Flag <kbd>F</kbd></button>
      <button type="button" class="ll-action" data-action="undo">Undo <kbd>U</kbd></button>
      <span class="ll-status" role="status" aria-live="polite"></span>
    </div>
    <form class="ll-flag" hidden>
      <label>Why flag this post?
        <input type="text" class="ll-flag-reason" maxlength="2000" autocomplete="off"
               placeholder="offensive, wrong language, spam, ...">
      </label>
      <button type="submit" class="ll-flag-submit">Flag post <kbd>Enter</kbd></button>
      <button type="button" class="ll-flag-cancel">Cancel <kbd>Esc</kbd></button>
      <div class="ll-flag-hint"></div>
    </form>
  </div>`;

function isTyping(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
}

function newAnswerId() {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

function createPanel(parent) {
  // A container of our own: the parent also holds the <style> that Streamlit put there for answer_panel.css.
  const root = document.createElement("div");
  root.innerHTML = TEMPLATE;
  parent.append(root);
  const find = (selector) => root.querySelector(selector);
  const post = find(".lingualoop-post");
  const flagForm = find(".ll-flag");
  const reason = find(".ll-flag-reason");
  const state = {
    send: null,
    shown: null, // {item_id, lease_id} on screen
    shownAt: performance.now(),
    pending: null, // {id, since} of the answer the server has not handled yet
    dropped: 0,
    keys: {},
    message: "",
    slowTimer: null,
  };

  function setStatus(text) {
    find(".ll-status").textContent = text;
  }

  function showBusy(busy) {
    root.querySelector(".ll-panel").classList.toggle("ll-busy", busy);
    root.querySelectorAll(".ll-panel button").forEach((button) => {
      button.disabled = busy;
    });
  }

  function send(action, extra) {
    if (state.pending !== null) {
      state.dropped += 1;
      setStatus(`Saving... ${state.dropped} key press${state.dropped === 1 ? "" : "es"} ignored`);
      return;
    }
    if (state.shown === null && action !== "undo") return;
    const id = newAnswerId();
    state.pending = { id, since: performance.now() };
    state.dropped = 0;
    showBusy(true);
    setStatus("Saving...");
    clearTimeout(state.slowTimer);
    state.slowTimer = setTimeout(() => {
      if (state.pending && state.pending.id === id) {
        setStatus("Still saving: the server is slow. If this stays, reload the page (your answers are kept).");
      }
    }, 8000);
    state.send("answer", {
      id,
      action,
      item_id: state.shown ? state.shown.item_id : null,
      lease_id: state.shown ? state.shown.lease_id : null,
      seconds: (performance.now() - state.shownAt) / 1000,
      ...extra,
    });
  }

  function openFlag() {
    flagForm.hidden = false;
    reason.value = "";
    find(".ll-flag-hint").textContent = "";
    reason.focus();
  }

  function closeFlag() {
    flagForm.hidden = true;
    reason.blur();
  }

  function onKey(event) {
    if (!root.isConnected) {
      document.removeEventListener("keydown", onKey);
      return;
    }
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (!flagForm.hidden) return; // the reason box has the keys while it is open
    const key = event.key.toLowerCase();
    const label = state.keys[key];
    if (label !== undefined) {
      event.preventDefault();
      send("label", { label });
    } else if (key === "s") {
      event.preventDefault();
      send("skip", {});
    } else if (key === "f") {
      event.preventDefault(); // the F itself must not be typed into the reason box
      if (state.pending === null && state.shown !== null) openFlag();
    } else if (key === "u") {
      event.preventDefault();
      send("undo", {});
    }
  }

  reason.addEventListener("keydown", (event) => {
    event.stopPropagation();
    if (event.key === "Escape") {
      event.preventDefault();
      closeFlag();
    }
  });
  flagForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = reason.value.trim();
    if (!text) {
      find(".ll-flag-hint").textContent = "Say why you flag this post (offensive, wrong language, spam, ...).";
      reason.focus();
      return;
    }
    closeFlag();
    send("flag", { reason: text });
  });
  find(".ll-flag-cancel").addEventListener("click", closeFlag);
  root.querySelectorAll(".ll-action").forEach((button) => {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (action === "flag") openFlag();
      else send(action, {});
    });
  });
  document.addEventListener("keydown", onKey);

  function drawLabels(labels) {
    const box = find(".ll-labels");
    const signature = JSON.stringify(labels);
    if (box.dataset.signature === signature) return;
    box.dataset.signature = signature;
    box.replaceChildren();
    state.keys = {};
    for (const label of labels) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "ll-label";
      button.dataset.label = label.code;
      button.style.setProperty("--ll-color", label.color);
      const name = document.createElement("span");
      name.textContent = label.name;
      const key = document.createElement("kbd");
      key.textContent = label.key;
      button.append(name, key);
      button.addEventListener("click", () => send("label", { label: label.code }));
      box.append(button);
      state.keys[label.key.toLowerCase()] = label.code;
    }
  }

  function drawPost(shown) {
    const changed =
      state.shown === null ||
      shown === null ||
      state.shown.item_id !== shown.item_id ||
      state.shown.lease_id !== shown.lease_id;
    if (!changed) return;
    state.shown = shown === null ? null : { item_id: shown.item_id, lease_id: shown.lease_id };
    if (shown === null) {
      post.textContent = "";
      return;
    }
    post.textContent = shown.text; // text, never HTML: a post shows exactly as typed
    post.setAttribute("lang", shown.language);
    post.setAttribute("dir", shown.direction);
    post.dataset.itemId = String(shown.item_id);
    post.dataset.leaseId = String(shown.lease_id);
    find(".ll-caption").textContent = shown.caption;
    state.shownAt = performance.now();
    closeFlag();
  }

  function update(data) {
    drawLabels(data.labels);
    drawPost(data.post);
    const suggestion = find(".ll-suggestion");
    suggestion.hidden = !data.suggestion;
    suggestion.textContent = data.suggestion || "";
    if (state.pending !== null && data.ack === state.pending.id) {
      clearTimeout(state.slowTimer);
      const dropped = state.dropped;
      state.pending = null;
      state.dropped = 0;
      showBusy(false);
      const parts = [];
      if (data.notice) parts.push(data.notice);
      if (dropped) parts.push(`${dropped} key press${dropped === 1 ? " was" : "es were"} ignored while saving.`);
      setStatus(parts.join(" "));
    } else if (state.pending === null) {
      setStatus(data.notice || "");
    }
  }

  return {
    setSender(sender) {
      state.send = sender;
    },
    update,
    destroy() {
      clearTimeout(state.slowTimer);
      document.removeEventListener("keydown", onKey);
      root.remove();
    },
  };
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let panel = panels.get(parentElement);
  if (panel === undefined) {
    panel = createPanel(parentElement);
    panels.set(parentElement, panel);
  }
  panel.setSender(setTriggerValue);
  panel.update(data);
  return () => {
    // Streamlit may call an older render's cleanup late: only a panel that has left the page is taken down.
    if (!parentElement.isConnected) {
      panel.destroy();
      panels.delete(parentElement);
    }
  };
}
