// The reset page: takes the token from the link, removes it from the address
// bar (and so from history), and posts it with the new password to
// POST /password/reset on this same path. Every message is inserted as text.
const token = new URLSearchParams(location.search).get("token") ?? "";
history.replaceState(null, "", location.pathname);

const form = document.getElementById("reset");
const message = document.getElementById("message");
const say = (text) => { message.textContent = text; };

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = form.elements.password.value;
  if (password !== form.elements.confirm.value) {
    say("The two passwords differ.");
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  say("");
  try {
    const resp = await fetch(location.pathname, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token, new_password: password }),
      referrerPolicy: "no-referrer",
    });
    if (resp.status === 204) {
      form.hidden = true;
      document.getElementById("done").hidden = false;
      return;
    }
    const body = await resp.json().catch(() => ({}));
    say(body.fields?.new_password ?? body.detail ?? `The server answered ${resp.status}.`);
  } catch {
    say("The server could not be reached; try again.");
  } finally {
    button.disabled = false;
  }
});
