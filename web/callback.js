// The sign-in window's last page: the hosted UI sends it here with ?code=…&state=… (or
// ?error=…). It hands them to the chat page (same origin, BroadcastChannel, nothing stored)
// and closes; the chat page checks the state and trades the code for tokens with its verifier.
const params = new URLSearchParams(location.search);
const channel = new BroadcastChannel("concierge-sign-in");
channel.postMessage({
  code: params.get("code"),
  state: params.get("state"),
  error: params.get("error"),
});
channel.close();
history.replaceState(null, "", location.pathname);
window.close();
document.getElementById("message").textContent =
  "Signed in. You can close this window and return to the chat.";
