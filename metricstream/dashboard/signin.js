// Signing in: when reads need a token (GET dashboard/session says `required` and not `signed_in`), the page
// shows a form instead of the board and posts the token to dashboard/session, which answers with an
// HttpOnly session cookie; from then on its same-origin fetches and EventSource send that cookie by
// themselves, so no token is ever put in a URL or kept by the page. A 401 (a token changed, a cookie
// cleared) brings the form back (main.js); Sign out deletes the session.

import { SESSION_URL, errorOf } from "./connection.js";

export class SignIn {
  /**
   * @param {Document} page index.html, with the form and the Sign out button
   * @param {(signedIn: boolean) => void} onSignedIn the token was taken (signedIn: a cookie was set)
   * @param {() => void} onSignedOut
   */
  constructor(page, onSignedIn, onSignedOut) {
    this.section = page.getElementById("signin");
    this.form = page.getElementById("signin-form");
    this.token = page.getElementById("signin-token");
    this.error = page.getElementById("signin-error");
    this.signout = page.getElementById("signout");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit(onSignedIn);
    });
    this.signout.addEventListener("click", async () => {
      try {
        await fetch(SESSION_URL, { method: "DELETE", cache: "no-store" });
      } catch {
        // the server is away: the page signs out all the same (its cookie lasts until the server clears it)
      }
      onSignedOut();
    });
  }

  get shown() {
    return !this.section.hidden;
  }

  /** The form, with `message` (why the last attempt or read failed) if any. */
  show(message = "") {
    this.signout.hidden = true;
    this.section.hidden = false;
    this.error.textContent = message;
    this.error.hidden = !message;
    this.token.focus();
  }

  /** The board instead (with the session cookie, when `signedIn`: then it can sign out). */
  hide(signedIn) {
    this.section.hidden = true;
    this.signout.hidden = !signedIn;
  }

  /** @param {(signedIn: boolean) => void} onSignedIn */
  async submit(onSignedIn) {
    const button = this.form.querySelector("button");
    button.disabled = true;
    let message;
    try {
      const response = await fetch(SESSION_URL, {
        method: "POST",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ token: this.token.value }),
      });
      if (response.ok) {
        const state = await response.json();
        this.token.value = "";
        this.error.hidden = true;
        onSignedIn(state.signed_in === true);
        return;
      }
      message = await errorOf(response);
    } catch {
      message = "the server could not be reached: try again";
    } finally {
      button.disabled = false;
    }
    this.error.textContent = message;
    this.error.hidden = false;
    this.token.select();
  }
}
