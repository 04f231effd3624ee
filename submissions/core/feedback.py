"""What a page tells the person once a job was saved: sent, waiting its turn, or why it could not be sent.
Shared by every page that saves a job (the form, uploads)."""

from django.contrib import messages
from django.http import HttpRequest

from submissions.models import Submission


def tell_outcome(request: HttpRequest, submission: Submission) -> None:
    if submission.request_id:
        messages.success(request, "Sent to Chamelaion.")
    elif submission.state == Submission.State.SEND_FAILED:
        messages.error(request, submission.last_error)
    elif submission.last_error:
        messages.warning(request, f"Saved, not sent yet. {submission.last_error}")
    else:
        messages.info(request, "Saved and waiting to send: it goes out in its turn within the rate limit.")
