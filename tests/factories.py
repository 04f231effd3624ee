import itertools

from submissions.models import Submission

_numbers = itertools.count(1)


def make_submission(user, **fields) -> Submission:
    """A saved submission with plausible inputs; any field can be overridden."""
    n = next(_numbers)
    defaults = {
        "video_url": "https://cdn.example.com/episode-1.mp4",
        "audio_url": "https://cdn.example.com/episode-1-de.wav",
        "reference_id": f"factory-{n}",
    }
    return Submission.objects.create(created_by=user, **{**defaults, **fields})
