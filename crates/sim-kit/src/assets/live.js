// Keeps a conversation's messages current in the simulator's web views without a reload. The
// page works without it; with it, every two seconds the view's JSON endpoint (the container's
// data-live) answers each message's HTML and version: new messages are added, changed ones
// replaced, deleted ones removed — except one whose form the person is using.
(() => {
  const box = document.getElementById("messages");
  if (!box?.dataset.live) return;
  const busy = (element) => element.contains(document.activeElement);

  function apply(messages) {
    if (messages.length) box.querySelector(".empty")?.remove();
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    const wanted = new Set(messages.map((message) => message.id));
    for (const element of [...box.children]) {
      if (element.id && !wanted.has(element.id) && !busy(element)) element.remove();
    }
    let previous = null;
    for (const message of messages) {
      let element = document.getElementById(message.id);
      if (!element || (element.dataset.v !== message.v && !busy(element))) {
        const template = document.createElement("template");
        template.innerHTML = message.html;
        const fresh = template.content.firstElementChild;
        if (element) element.replaceWith(fresh);
        else if (previous) previous.after(fresh);
        else box.prepend(fresh);
        element = fresh;
      }
      previous = element;
    }
    if (atBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  async function poll() {
    try {
      const response = await fetch(box.dataset.live, { headers: { accept: "application/json" } });
      if (response.ok) apply((await response.json()).messages);
    } catch {
      // The simulator is restarting or gone; the next poll tries again.
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
