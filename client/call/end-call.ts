import { ModalQuestion } from './consent-dialog';
import type { Translate } from './page';

/**
 * The clerk's *End call*: the form in the header asks first in
 * #end-call-dialog, then is sent with fetch (with its CSRF token), so a
 * refusal (an expired session answers 403) shows a message in the dialog
 * and the call goes on. Without JavaScript the form posts as it is.
 */
export function installEndCall(t: Translate): void {
  const form = document.getElementById('end-call-form');
  const dialog = document.getElementById('end-call-dialog');
  const confirm = document.getElementById('end-call-confirm');
  const cancel = document.getElementById('end-call-cancel');
  const error = document.getElementById('end-call-error');
  if (!(form instanceof HTMLFormElement) || !(dialog instanceof HTMLDialogElement) || !(confirm instanceof HTMLButtonElement) || !(cancel instanceof HTMLButtonElement) || !error) return;
  const question = new ModalQuestion(dialog, { mustAnswer: false });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    error.hidden = true;
    question.open(cancel);
  });
  cancel.addEventListener('click', () => question.close());
  confirm.addEventListener('click', () => {
    confirm.disabled = true;
    error.hidden = true;
    const body = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (typeof value === 'string') body.append(name, value);
    // The answer to success is a redirect to the dashboard: not followed here, so its flash ("The call has ended.") shows there.
    fetch(form.action, { method: 'POST', body, credentials: 'same-origin', redirect: 'manual', headers: { Accept: 'text/html' } })
      .then((response) => {
        if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
          window.location.assign('/dashboard');
          return;
        }
        // 403: the form's token (the session) expired; 401: signed out.
        throw new Error(response.status === 403 || response.status === 401 ? 'end_call_expired' : 'end_call_failed');
      })
      .catch((failure: unknown) => {
        error.textContent = t(failure instanceof Error && failure.message === 'end_call_expired' ? 'end_call_expired' : 'end_call_failed');
        error.hidden = false;
        confirm.disabled = false;
      });
  });
}
