from submissions.models import Submission
from submissions.services import new_reference_id


def make_submission(user, **fields) -> Submission:
    """A saved submission with plausible inputs; any field can be overridden."""
    defaults = {
        "video_url": "https://cdn.example.com/episode-1.mp4",
        "audio_url": "https://cdn.example.com/episode-1-de.wav",
        # As DubDash makes them when nobody chooses one (a chosen id is looked up before its first send).
        "reference_id": new_reference_id(),
    }
    return Submission.objects.create(created_by=user, **{**defaults, **fields})
